"""Small readable tables (plain text and HTML) for `info` properties."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _cell(value.item())
    if hasattr(value, "shape") and getattr(value, "ndim", 1) == 0:
        return _cell(float(value))
    return "" if value is None else str(value)


class Table:
    """Columns of equal length, shown as an aligned text table or an HTML table.

    **Arguments:**

    - `columns`: mapping of column title to the list of its cells.
    """

    def __init__(self, columns: Mapping[str, Sequence[Any]]):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"table columns have different lengths {sorted(lengths)}")
        self.columns = {str(k): [_cell(v) for v in vals] for k, vals in columns.items()}

    @property
    def nrows(self) -> int:
        return len(next(iter(self.columns.values()), []))

    @property
    def text(self) -> str:
        titles = list(self.columns)
        widths = [max([len(t)] + [len(c) for c in self.columns[t]]) for t in titles]
        rule = "+".join("-" * (w + 2) for w in widths)
        lines = [rule, " " + " | ".join(t.ljust(w) for t, w in zip(titles, widths)), rule]
        for i in range(self.nrows):
            cells = (self.columns[t][i].ljust(w) for t, w in zip(titles, widths))
            lines.append(" " + " | ".join(cells))
        lines.append(rule)
        return "\n".join(lines)

    @property
    def html(self) -> str:
        head = "".join(f"<th>{html.escape(t)}</th>" for t in self.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self.columns[t][i])}</td>" for t in self.columns)
            + "</tr>"
            for i in range(self.nrows)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.html
