"""What every benchmark here shares: worker processes (ours and the peers' venvs), timing,
versions, git snapshots, the machine and markdown reports.

Imports only the standard library at module level, so that a peer's venv (ELISA's, in
`bench_inloop.py`) can load it. The timing helpers are the peer harness's own (`time_first`,
`time_steady`, `batch_around` of ../shared/peers-bench/peers_bench_common.py); importing that
module switches JAX to float64 and turns the persistent compilation cache off.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared"))
PEERS_DIR = os.path.join(SHARED, "peers-bench")
VENVS = os.environ.get("VENVS", os.path.expanduser("~/.cache/bayspec-peers"))
PEER_TIMING = "peers_bench_common"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def import_path(name: str, path: str):
    """The module in file `path`, imported as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -------------------------------------------------------------------------------- timing --

def peer_timing(peers_dir: str = PEERS_DIR):
    """The peer harness's timing module, imported once (from `peers_dir` the first time)."""
    module = sys.modules.get(PEER_TIMING)
    if module is None:
        module = import_path(PEER_TIMING, os.path.join(peers_dir, f"{PEER_TIMING}.py"))
    return module


def time_first(fn, *args):
    """``(seconds, output)`` of the first call of `fn` (trace + compile + one run)."""
    return peer_timing().time_first(fn, *args)


def time_steady(fn, arg_list, **options):
    """``(median s, calls, p10 s, p90 s)`` of `fn` cycling through `arg_list`."""
    return peer_timing().time_steady(fn, arg_list, **options)


def steady_s(fn, arg_list, budget_s: float, min_calls: int, warmup: int) -> float:
    """Median seconds per call of `fn` cycling through `arg_list`."""
    return time_steady(fn, arg_list, min_calls=min_calls, budget_s=budget_s, warmup=warmup)[0]


def batch_around(theta0, n: int):
    """`n` parameter sets around `theta0` (the peer harness's vmap batch)."""
    return peer_timing().batch_around(theta0, n)


def parameter_cycle(theta0, rng) -> list:
    """`theta0` and three draws around it (normal, sd 1e-4), as the peer harness's `bench_fn`
    cycles through; numpy arrays."""
    import numpy as np

    theta0 = np.asarray(theta0, dtype=float)
    return [theta0] + [theta0 + rng.normal(0, 1e-4, theta0.shape) for _ in range(3)]


# ------------------------------------------------------------------------------ processes --

@dataclasses.dataclass
class WorkerRun:
    """One finished worker process and its ``RESULT {json}`` lines."""

    cmd: list
    rc: int | str
    stdout: str
    stderr: str
    seconds: float
    results: list

    @property
    def tail(self) -> str:
        """The last line of stderr (what failed)."""
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def emit(result: dict) -> None:
    """Print `result` as a worker's ``RESULT {json}`` line."""
    print("RESULT " + json.dumps(result), flush=True)


def results_in(text: str) -> list[dict]:
    return [json.loads(line[7:]) for line in text.splitlines() if line.startswith("RESULT ")]


def run_worker(cmd: list, timeout: float | None = None, env: dict | None = None,
               cwd: str | None = None) -> WorkerRun:
    """Run `cmd` in a fresh process and collect its results; a timeout gives rc 'timeout'."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=cwd)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, rc = f"timed out after {timeout} s", "timeout"
    return WorkerRun(cmd, rc, out, err, time.perf_counter() - t0, results_in(out))


def run_logged(cmd: list, label: str, logf, timeout: float | None = None) -> WorkerRun:
    """`run_worker` with its output appended to `logf` and progress on stderr."""
    log(f"  {label}")
    run = run_worker(cmd, timeout)
    logf.write(f"== {label}: {shlex.join(cmd)}\n{run.stdout}\n{run.stderr}\n")
    logf.flush()
    if run.rc != 0:
        log(f"    FAILED ({run.rc}): {run.tail}")
    log(f"    done in {run.seconds:.0f} s")
    return run


def venv_python(name: str) -> str:
    """The python of peer venv `name` under `VENVS` (made by peers_bench.sh)."""
    return os.path.join(VENVS, name, "bin", "python")


def run_peer_suite(peers_dir: str, workdir: str, out: str, ks: list, budget: float,
                   setup: bool, label: str, logf) -> list[dict]:
    """One repetition of ``peers_bench.sh`` (bayspec, jaxspec, ELISA in their venvs); its rows,
    or one error row."""
    env = dict(os.environ, KS=",".join(map(str, ks)), BUDGET=str(budget), REPEAT="1", OUT=out,
               PEERS_SETUP="1" if setup else "0")
    cmd = ["bash", os.path.join(peers_dir, "peers_bench.sh")]
    log(f"  {label}: KS={env['KS']} BUDGET={env['BUDGET']} REPEAT=1 "
        f"PEERS_SETUP={env['PEERS_SETUP']} {shlex.join(cmd)}")
    run = run_worker(cmd, env=env, cwd=workdir)
    logf.write(f"== {label}: {shlex.join(cmd)}\n{run.stdout}\n{run.stderr}\n")
    logf.flush()
    log(f"    done in {run.seconds:.0f} s (rc {run.rc})")
    rows = []
    if os.path.exists(out):
        rows = [json.loads(line) for line in open(out) if line.strip()]
    return rows or [{"tool": "peers", "error": f"peers_bench.sh rc {run.rc}, no results"}]


def export_peer_reference(path: str, peers_dir: str = PEERS_DIR) -> None:
    """The grouping and reference values the peers' loaders need, from bayspec 0.4.5's venv."""
    if os.path.exists(path):
        return
    cmd = [venv_python("bsref"), os.path.join(peers_dir, "peers_bench_bayspec.py"),
           "--export", path]
    subprocess.run(cmd, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=peers_dir))


# ------------------------------------------------------------------- versions and machine --

def version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """nproc, cpu_count, platform, processor, cpu_model and memory of this machine."""
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"nproc": nproc, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else "?"
    except OSError:
        info["cpu_model"] = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["memory"] = f"{kb / 1024 ** 2:.1f} GiB"
    except (OSError, StopIteration):
        info["memory"] = "?"
    return info


# --------------------------------------------------------------------------------- git --

def git(*cmd) -> str:
    return subprocess.run(["git", "-C", REPO, *cmd], capture_output=True, text=True,
                          check=True).stdout


def checkout_commit() -> str:
    """``git describe --always --dirty`` of this checkout, for a results file's header."""
    try:
        return git("describe", "--always", "--dirty").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def snapshot_code(mode: str, dest: str) -> dict:
    """Copy bayspec_jax into `dest`: the committed HEAD (`mode` 'head') or the working tree
    ('worktree'); what was copied, for the report."""
    import hashlib
    import shutil

    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    info = {"mode": mode}
    try:
        info["commit"] = git("rev-parse", "HEAD").strip()
        info["subject"] = git("log", "-1", "--format=%s").strip()
        dirty = git("status", "--porcelain", "--", "bayspec_jax").splitlines()
    except (OSError, subprocess.CalledProcessError):
        info["commit"], info["subject"], dirty = None, None, []
    if mode == "head" and info["commit"]:
        archive = subprocess.run(["git", "-C", REPO, "archive", "HEAD", "bayspec_jax"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        info["description"] = (f"bayspec_jax at commit {info['commit'][:12]} "
                               f"('{info['subject']}')")
        info["uncommitted_changes_not_measured"] = dirty
        return info
    shutil.copytree(os.path.join(REPO, "bayspec_jax"), os.path.join(dest, "bayspec_jax"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    diff = git("diff", "HEAD", "--", "bayspec_jax") if info["commit"] else ""
    info["dirty_files"] = dirty
    info["diff_sha1"] = hashlib.sha1(diff.encode()).hexdigest()[:12]
    info["description"] = (f"bayspec_jax working tree on top of commit "
                           f"{(info['commit'] or '?')[:12]}"
                           + (f" with uncommitted changes in {len(dirty)} file(s) (diff sha1 "
                              f"{info['diff_sha1']})" if dirty else ""))
    return info


# ----------------------------------------------------------------------------- reports --

def command_line(script: str, argv: list) -> str:
    """How `script` (a file in benchmarks/) was run, from the repository root."""
    return shlex.join(["python3", f"benchmarks/{script}", *argv])


def report_header(title: str, script: str) -> list[str]:
    """A report's first lines: its title and which script writes it."""
    return [f"# {title}", "", f"Written by `benchmarks/{script}`; rerun it to refresh this file.",
            ""]


def table_row(cells) -> str:
    return "|" + "|".join(f" {cell} " if cell != "" else " " for cell in cells) + "|"


def table_lines(header, rows) -> list[str]:
    """A markdown table: the header's cells, a rule, one line per row of cells."""
    return [table_row(header), "|" + "---|" * len(header), *(table_row(r) for r in rows)]


def write_report(path: str, lines: list[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
