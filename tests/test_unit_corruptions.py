"""Random corruptions of real spectra, through the whole chain: reader, `DataUnit`, views,
log-likelihood and gradient. Each corrupted source or background is either rejected with an
`OGIPError` (at reading or at the unit) or gives a unit whose views, log-likelihood and
gradient at the reference parameters are finite (issue 16's promise, end to end; the readers
alone are checked in `test_io_corruptions`)."""

import io

import jax
import jax.numpy as jnp
import numpy as np
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_io_corruptions import (KEYS, OPERATIONS, card_values, corrupt_column, numbers,
                                 quietly, to_bytes)

import bayspec_jax as bj
from bayspec_jax import likelihood, models

FILES = {"src": "ME/me.src", "bkg": "ME/me.bkg"}
RSP = "ME/me.rsp"
REFERENCE = jnp.array([-1.5, 2.7, 0.0])  # cpl: alpha, log10 Ec, log10 A (a GBM-like burst)
VIEWS = ("src_ctsspec", "bkg_ctsspec", "net_ctsspec", "src_ctsrate", "net_ctsrate", "src_counts")


def _corrupted(data_dir, part: str, edit) -> io.BytesIO:
    with fits.open(data_dir / FILES[part], memmap=False) as hdul:
        edit(hdul)
        return io.BytesIO(to_bytes(hdul))


def _through_the_chain(data_dir, part: str, data: io.BytesIO) -> None:
    files = {"src": str(data_dir / FILES["src"]), "bkg": str(data_dir / FILES["bkg"])}
    files[part] = data
    try:
        unit = quietly(lambda: bj.DataUnit(src=files["src"], bkg=files["bkg"],
                                           rsp=str(data_dir / RSP), notc=[8, 900],
                                           stat="pgstat"))
    except bj.OGIPError:
        return
    for view in VIEWS:
        assert np.all(np.isfinite(np.asarray(getattr(unit, view)))), view
    jax.config.update("jax_enable_x64", True)
    value, gradient = likelihood.make_loglike(models.cpl, bj.Data([("me", unit)]),
                                              grad=True)(REFERENCE)
    assert np.isfinite(float(value)), float(value)
    assert np.all(np.isfinite(np.asarray(gradient))), gradient


CHAIN = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])


@CHAIN
@given(part=st.sampled_from(sorted(FILES)), pick=st.integers(0, 10**6),
       operation=st.sampled_from(OPERATIONS), factor=numbers, value=numbers,
       picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_column_corruptions_end_to_end(data_dir, part, pick, operation, factor, value, picks):
    def edit(hdul):
        numeric = [c.name for c in hdul["SPECTRUM"].columns
                   if "A" not in str(c.format).upper()]
        corrupt_column(hdul, "SPECTRUM", numeric[pick % len(numeric)], operation, factor,
                       value, picks)

    _through_the_chain(data_dir, part, _corrupted(data_dir, part, edit))


@CHAIN
@given(part=st.sampled_from(sorted(FILES)),
       cards=st.lists(st.tuples(st.sampled_from(KEYS), card_values), min_size=1, max_size=3))
def test_header_corruptions_end_to_end(data_dir, part, cards):
    def edit(hdul):
        for key, value in cards:
            if key != "EXTNAME":
                hdul["SPECTRUM"].header[key] = value

    _through_the_chain(data_dir, part, _corrupted(data_dir, part, edit))
