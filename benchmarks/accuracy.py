"""Accuracy of sjax's nonlinear functions: the largest error over a fixed grid of each function's domain.

For every case the whole grid is secret-shared once, the function runs once on the share (jitted, compiled
ahead of time so that compile and run time are measured apart) and the revealed result ``y`` is compared
with the exact float64 function of the input *as encoded* (``x`` rounded to the fixed-point grid), so the
figure is the function's own error and not the input's rounding:

    elementwise functions, layer_norm:   max |y - ref| / max(1, |ref|)
    softmax, log_softmax:                max |y - ref|

Two groups of cases run: the target domains (goal: error <= 1e-4) and the comparison grid on which the
CrypTen 0.4.1 and SPU 0.9.5 figures printed beside ours were measured by others with the same metric.

Each case also reports its rounds, from ``sjax.cost``. Writes a table to stdout, a JSON summary
(``--out``) and a PNG plot of error against x (``--plot``; for layer_norm, against the row's standard
deviation).

Run with ``python benchmarks/accuracy.py [--points N] [--parties N] [--only exp,log] [--seed S]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

import sjax

TARGET = 1e-4
PLOT_FLOOR = 1e-10  # errors of exactly 0 are drawn here on the log-scale plots
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SOFTMAX_LENGTHS = (2, 10, 100, 1000)
SOFTMAX_LOGITS = 4000  # per case: rows of L logits, at least 4 rows
LAYER_NORM_LENGTHS = (10, 100, 1000)
LAYER_NORM_MEAN = 1000.0  # row means are uniform in [-1000, 1000]
EPSILON = 1e-6  # sjax.layer_norm's default


# -- exact references (float64, on the encoded input) -----------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, written through tanh so that it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its exact erf form, ``x/2 (1 + erf(x / sqrt 2))``."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _silu(x: np.ndarray) -> np.ndarray:
    """SiLU, ``x sigmoid(x)``."""
    return x * _sigmoid(x)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _layer_norm(x: np.ndarray) -> np.ndarray:
    """Layer normalisation over the last axis, with the two-pass variance (no cancellation)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + EPSILON)


REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "reciprocal": np.reciprocal,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": _gelu,
    "silu": _silu,
    "sin": np.sin,
    "cos": np.cos,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "layer_norm": _layer_norm,
}
ROW_FUNCTIONS = ("softmax", "log_softmax", "layer_norm")  # take ``axis``
ABSOLUTE = ("softmax", "log_softmax")  # measured by the absolute error


# -- the cases ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One measurement: a function on one grid.

    Attributes:
        function: name of the public sjax function, ``sjax.<function>(x_share, key)``.
        group: ``"target"`` (our domains, goal 1e-4) or ``"comparison"`` (the CrypTen/SPU grid).
        domain: ``(low, high)`` of the inputs.
        grid: ``"linear"``, ``"geometric"`` (log-spaced, one sign), ``"zero+geometric"`` (0, then
            log-spaced from the smallest positive fixed-point value), ``"uniform"`` / ``"normal"``
            (random logits for softmax rows; ``normal`` is ``3 * N(0, 1)``) or ``"std"`` (layer_norm rows
            whose standard deviations are log-spaced over ``domain``, with random means).
        rows: row functions only, number of rows.
        length: row functions only, row length L.
        crypten: CrypTen 0.4.1's error on this grid, from the issue (comparison cases only).
        spu: SPU 0.9.5's error on this grid, from the issue (comparison cases only).
        note: remark printed beside the CrypTen/SPU figures.
    """

    function: str
    group: str
    domain: tuple[float, float]
    grid: str
    rows: int = 0
    length: int = 0
    crypten: float | None = None
    spu: float | None = None
    note: str = ""

    @property
    def metric(self) -> str:
        """``"absolute"`` for softmax and log_softmax, ``"relative"`` (to ``max(1, |ref|)``) otherwise."""
        return "absolute" if self.function in ABSOLUTE else "relative"

    @property
    def label(self) -> str:
        """Short description of the inputs, e.g. ``[-16, 16]`` or ``64x10, 3*N(0,1)``."""
        if self.grid == "std":
            return f"{self.rows}x{self.length}, std [{_num(self.domain[0])}, {_num(self.domain[1])}]"
        if self.function in ROW_FUNCTIONS:
            if self.grid == "normal":
                return f"{self.rows}x{self.length}, 3*N(0,1)"
            return f"{self.rows}x{self.length}, U[{_num(self.domain[0])}, {_num(self.domain[1])}]"
        return f"[{_num(self.domain[0])}, {_num(self.domain[1])}]"


def _target_cases() -> list[Case]:
    """The target domains, on which sjax aims at an error of at most 1e-4."""
    cases = [
        Case("exp", "target", (-16, 16), "linear"),
        Case("log", "target", (1e-3, 1e4), "geometric"),
        Case("reciprocal", "target", (1e-2, 1e4), "geometric"),
        Case("reciprocal", "target", (-1e4, -1e-2), "geometric"),
        Case("sqrt", "target", (0, 1e4), "zero+geometric"),
        Case("rsqrt", "target", (1e-2, 1e4), "geometric"),
        Case("sigmoid", "target", (-30, 30), "linear"),
        Case("tanh", "target", (-10, 10), "linear"),
        Case("erf", "target", (-5, 5), "linear"),
        Case("gelu", "target", (-10, 10), "linear"),
        Case("silu", "target", (-10, 10), "linear"),
        Case("sin", "target", (-100, 100), "linear"),
        Case("cos", "target", (-100, 100), "linear"),
    ]
    for name in ABSOLUTE:
        cases += [
            Case(name, "target", (-30, 30), "uniform", max(4, SOFTMAX_LOGITS // n), n) for n in SOFTMAX_LENGTHS
        ]
    cases += [Case("layer_norm", "target", (0.1, 100), "std", 10_000 // n, n) for n in LAYER_NORM_LENGTHS]
    return cases


def _comparison_cases() -> list[Case]:
    """The issue's comparison grid, with the CrypTen 0.4.1 / SPU 0.9.5 errors measured there."""
    return [
        Case("exp", "comparison", (-8, 8), "linear", crypten=0.12, spu=0.115),
        Case("log", "comparison", (0.01, 100), "geometric", crypten=9.6e-3, spu=3.3e-5),
        Case("reciprocal", "comparison", (0.1, 100), "geometric", crypten=1.5e-3, spu=5.4e-5),
        Case("sqrt", "comparison", (0.01, 100), "geometric", crypten=0.040, spu=4.1e-5),
        Case("rsqrt", "comparison", (0.1, 100), "geometric", crypten=4.7e-3, spu=3.6e-4),
        Case("sigmoid", "comparison", (-10, 10), "linear", crypten=2.3e-3, spu=9.6e-4),
        Case("tanh", "comparison", (-5, 5), "linear", crypten=4.6e-3, spu=4.9e-3),
        Case("erf", "comparison", (-3, 3), "linear", crypten=2.8e5, spu=4.8e-4, note="CrypTen diverges"),
        Case("cos", "comparison", (-3.14, 3.14), "linear", crypten=0.020, spu=1.4e-4),
        Case("softmax", "comparison", (-math.inf, math.inf), "normal", 64, 10, crypten=3.4e-3, spu=3.3e-3),
    ]


CASES: tuple[Case, ...] = tuple(_target_cases() + _comparison_cases())
FUNCTIONS: tuple[str, ...] = tuple(dict.fromkeys(case.function for case in CASES))


# -- inputs ------------------------------------------------------------------------------------------------


def make_inputs(case: Case, points: int, key: jax.Array, frac_bits: int) -> np.ndarray:
    """The plaintext inputs of ``case``: a 1-D grid of ``points`` values, or softmax logits ``[rows, L]``.

    Args:
        case: the case.
        points: grid size (elementwise functions).
        key: PRNG key for the random softmax logits (unused by grids).
        frac_bits: fractional bits; the ``zero+geometric`` grid starts at ``2**-frac_bits``.
    """
    low, high = case.domain
    if case.grid == "linear":
        return np.linspace(low, high, points)
    if case.grid == "geometric":
        # Negative domains are mirrored: -geomspace(1e4, 1e-2) runs from -1e4 up to -1e-2.
        return -np.geomspace(-low, -high, points) if high < 0 else np.geomspace(low, high, points)
    if case.grid == "zero+geometric":
        return np.concatenate([[0.0], np.geomspace(2.0**-frac_bits, high, points - 1)])
    shape = (case.rows, case.length)
    if case.grid == "uniform":
        return np.asarray(jax.random.uniform(key, shape, minval=low, maxval=high, dtype=np.float64))
    if case.grid == "normal":
        return 3.0 * np.asarray(jax.random.normal(key, shape, dtype=np.float64))
    if case.grid == "std":
        mean_key, z_key = jax.random.split(key)
        z = np.asarray(jax.random.normal(z_key, shape, dtype=np.float64))
        z = (z - z.mean(-1, keepdims=True)) / z.std(-1, keepdims=True)  # each row: mean 0, std 1 exactly
        means = np.asarray(jax.random.uniform(mean_key, (case.rows, 1), minval=-1, maxval=1))
        return LAYER_NORM_MEAN * means + np.geomspace(low, high, case.rows)[:, None] * z
    raise ValueError(f"unknown grid {case.grid!r}")


def encoded(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``x`` rounded to the fixed-point grid, as the secret share holds it."""
    return np.asarray(sjax.ring.decode(sjax.ring.encode(x, frac_bits), frac_bits))


def errors(case: Case, y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Pointwise error: absolute for softmax and log_softmax rows, else relative to ``max(1, |ref|)``."""
    diff = np.abs(y - ref)
    return diff if case.metric == "absolute" else diff / np.maximum(1.0, np.abs(ref))


# -- running -----------------------------------------------------------------------------------------------


def resolve(function: str) -> Callable:
    """``sjax.<function>`` (with ``axis=-1`` for the row functions).

    Raises:
        AttributeError: sjax has no such function.
    """
    fn = getattr(sjax, function)
    return functools.partial(fn, axis=-1) if function in ROW_FUNCTIONS else fn


class Runner:
    """Compiles each function once per input shape (``jax.jit`` + ahead-of-time compile) and runs it."""

    def __init__(self, functions: dict[str, Callable]):
        self._functions = functions
        self._jitted = {name: jax.jit(fn) for name, fn in functions.items()}
        self._compiled: dict[tuple, Callable] = {}

    def rounds(self, function: str, share: sjax.ArithShare, key: jax.Array) -> int:
        """The rounds of ``function`` on ``share``, read off the trace by :func:`sjax.cost` (nothing runs)."""
        return sjax.cost(self._functions[function])(share, key).rounds

    def compile(self, function: str, share: sjax.ArithShare, key: jax.Array) -> tuple[Callable, float, bool]:
        """Returns ``(executable, compile seconds, reused)``; a shape seen before is not compiled again."""
        signature = (function, share.shares.shape, share.frac_bits)
        if signature in self._compiled:
            return self._compiled[signature], 0.0, True
        start = time.perf_counter()
        executable = self._jitted[function].lower(share, key).compile()
        seconds = time.perf_counter() - start
        self._compiled[signature] = executable
        return executable, seconds, False


def measure(case: Case, runner: Runner, keys: jax.Array, *, points: int, parties: int) -> dict:
    """Runs one case and returns its record (the JSON fields plus the pointwise arrays under ``_x``/``_err``).

    Args:
        case: the case.
        runner: compiles and caches the jitted functions.
        keys: three fresh keys, for the logits, the sharing and the protocol; each is used once.
        points: grid size.
        parties: number of parties.
    """
    data_key, share_key, function_key = keys
    frac_bits = sjax.ring.DEFAULT_FRAC_BITS
    x = make_inputs(case, points, data_key, frac_bits)
    share = sjax.share(x, share_key, n_parties=parties, frac_bits=frac_bits)
    executable, compile_s, reused = runner.compile(case.function, share, function_key)
    start = time.perf_counter()
    out = jax.block_until_ready(executable(share, function_key))
    run_s = time.perf_counter() - start
    y = np.asarray(sjax.reveal(out))
    xe = encoded(x, frac_bits)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = REFERENCES[case.function](xe)
    err = errors(case, y, ref)
    rounds = runner.rounds(case.function, share, function_key)
    return _record(case, xe, y, ref, err, rounds=rounds, compile_s=compile_s, reused=reused, run_s=run_s)


def _record(
    case: Case, xe, y, ref, err, *, rounds: int, compile_s: float, reused: bool, run_s: float
) -> dict:
    """The JSON record of one measured case."""
    nan_count = int(np.count_nonzero(np.isnan(y)))
    ranked = np.where(np.isnan(err), np.inf, err)  # a NaN result is the worst error there is
    flat = int(np.argmax(ranked))
    index = [int(i) for i in np.unravel_index(flat, err.shape)]
    max_error = float(err.flat[flat]) if np.isfinite(ranked.flat[flat]) else math.nan
    return {
        "function": case.function,
        "group": case.group,
        "label": case.label,
        "domain": [case.domain[0], case.domain[1]] if math.isfinite(case.domain[0]) else None,
        "grid": case.grid,
        "shape": list(err.shape),
        "points": int(err.size),
        "metric": case.metric,
        "max_error": max_error,
        "where": {"index": index, "x": float(xe.flat[flat]), "y": float(y.flat[flat]),
                  "ref": float(ref.flat[flat])},
        "nan_count": nan_count,
        "target": TARGET,
        "pass": bool(max_error <= TARGET),
        "crypten": case.crypten,
        "spu": case.spu,
        "note": case.note,
        "rounds": rounds,
        "compile_s": round(compile_s, 3),
        "compile_reused": reused,
        "run_s": round(run_s, 4),
        "_x": xe,
        "_err": err,
    }


# -- output ------------------------------------------------------------------------------------------------


def _num(v: float) -> str:
    """Compact number: ``16``, ``0.01``, ``1e4``, ``1e-3``."""
    if v == 0:
        return "0"
    exponent = math.log10(abs(v))
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        if exponent == round(exponent):
            return f"{'-' if v < 0 else ''}1e{int(round(exponent))}"
        return f"{v:.3g}"
    return f"{v:g}"


def _err(v: float | None) -> str:
    """An error figure for the table."""
    return "-" if v is None else ("nan" if math.isnan(v) else f"{v:.2e}")


def _where(record: dict) -> str:
    """Where the largest error occurs: ``x`` for grids, ``[row, col] x`` for softmax rows."""
    x = f"x={record['where']['x']:.6g}"
    if record["function"] in ROW_FUNCTIONS:
        row, col = record["where"]["index"]
        return f"[{row},{col}] {x}"
    return x


def print_table(records: list[dict]) -> None:
    """Prints one table per group of cases."""
    header = (
        "function", "domain", "points", "sjax max err", "at", f"<={TARGET:g}", "rounds", "CrypTen", "SPU"
    )
    widths = (12, 26, 8, 12, 24, 8, 6, 9, 9)
    titles = {
        "target": "Target domains (metric |y-ref|/max(1,|ref|); softmax, log_softmax rows: |y-ref|)",
        "comparison": "Comparison grid (CrypTen 0.4.1 / SPU 0.9.5 figures from the issue, same metric)",
    }
    for group in ("target", "comparison"):
        rows = [r for r in records if r["group"] == group]
        if not rows:
            continue
        print(f"\n{titles[group]}")
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        print("  ".join("-" * w for w in widths))
        for r in rows:
            cells = (
                r["function"], r["label"], str(r["points"]), _err(r["max_error"]), _where(r),
                "pass" if r["pass"] else "FAIL", str(r["rounds"]), _err(r["crypten"]), _err(r["spu"]),
            )
            line = "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
            notes = [r["note"]] if r["note"] else []
            if r["nan_count"]:
                notes.append(f"{r['nan_count']} NaN results")
            print(line + (f"   ({'; '.join(notes)})" if notes else ""))


def write_json(records: list[dict], meta: dict, path: Path) -> None:
    """Writes the summary (without the pointwise arrays) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    results = [{k: _finite(v) for k, v in r.items() if not k.startswith("_")} for r in records]
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2, allow_nan=False) + "\n")


def _finite(value):
    """``value`` with NaN (a NaN result) written as JSON ``null``."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def write_plot(records: list[dict], path: Path) -> None:
    """One subplot per function: pointwise error against x on a log scale, with the 1e-4 target line."""
    import matplotlib  # noqa: PLC0415  (optional dependency, the ``bench`` extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    functions = list(dict.fromkeys(r["function"] for r in records))
    ncols = min(4, len(functions))
    nrows = math.ceil(len(functions) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, function in zip(axes.flat, functions):
        _plot_function(ax, function, [r for r in records if r["function"] == function])
    for ax in list(axes.flat)[len(functions):]:
        ax.set_visible(False)
    fig.suptitle(f"sjax accuracy (errors of 0 drawn at {PLOT_FLOOR:g})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_function(ax, function: str, records: list[dict]) -> None:
    """Draws the cases of one function into ``ax``."""
    # Log-spaced grids are drawn against |x| on a log axis (x = 0, sqrt's first point, is left out).
    logx = any(r["grid"] in ("geometric", "zero+geometric", "std") for r in records)
    mirrored = logx and any(r["domain"] and r["domain"][1] < 0 for r in records)
    for r in records:
        x, err = r["_x"].ravel(), np.maximum(np.nan_to_num(r["_err"].ravel(), nan=np.inf), PLOT_FLOOR)
        label = f"{r['group'][:4]} {r['label']}"
        if r["grid"] == "std":  # each element against the standard deviation of its row
            x = np.broadcast_to(r["_x"].std(axis=-1, keepdims=True), r["_x"].shape).ravel()
        elif logx:
            x = np.abs(x)
        if function in ROW_FUNCTIONS:
            ax.scatter(x, err, s=3, alpha=0.6, label=label)
        else:
            ax.plot(x, err, lw=0.8, label=label)
    ax.axhline(TARGET, color="red", ls="--", lw=1, label=f"target {TARGET:g}")
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_title(function)
    xlabel = {"softmax": "logit x", "log_softmax": "logit x", "layer_norm": "row standard deviation"}
    ax.set_xlabel(xlabel.get(function, "|x|" if mirrored else "x"))
    ax.set_ylabel("absolute error" if function in ABSOLUTE else "relative error")
    ax.legend(fontsize=6, loc="best")


# -- main --------------------------------------------------------------------------------------------------


def select(only: str | None, parser: argparse.ArgumentParser) -> list[Case]:
    """The cases of the functions named in ``--only`` (all of them without it)."""
    if not only:
        return list(CASES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) {', '.join(unknown)}; choose from {', '.join(FUNCTIONS)}")
    return [case for case in CASES if case.function in names]


def parse_args() -> tuple[argparse.Namespace, list[Case]]:
    """Command-line options and the selected cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2001, help="grid size per case (default 2001)")
    parser.add_argument("--parties", type=int, default=2, help="number of parties (default 2)")
    parser.add_argument("--only", help="comma-separated functions to run, e.g. exp,log (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the root PRNG key (default 0)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "accuracy.json", help="JSON output path")
    parser.add_argument("--plot", type=Path, default=RESULTS_DIR / "accuracy.png", help="PNG output path")
    args = parser.parse_args()
    if args.points < 2:
        parser.error("--points must be at least 2")
    return args, select(args.only, parser)


def main() -> None:
    """Runs the selected cases, then prints the table and writes the JSON and the plot."""
    args, cases = parse_args()
    # Resolve every function before running anything: a missing one fails at once, naming itself.
    runner = Runner({name: resolve(name) for name in dict.fromkeys(c.function for c in cases)})
    # Three fresh keys per case of the full list, so a case's keys do not depend on --only.
    all_keys = jax.random.split(jax.random.key(args.seed), 3 * len(CASES)).reshape(len(CASES), 3)
    print(f"sjax {sjax.__version__}, jax {jax.__version__} on {jax.default_backend()}: "
          f"{args.parties} parties, {sjax.ring.DEFAULT_FRAC_BITS} fractional bits, "
          f"{args.points} grid points, {len(cases)} cases", flush=True)
    records, start = [], time.perf_counter()
    for i, case in enumerate(cases, 1):
        keys = all_keys[CASES.index(case)]
        r = measure(case, runner, keys, points=args.points, parties=args.parties)
        compiled = "compile reused" if r["compile_reused"] else f"compile {r['compile_s']:.1f} s"
        print(f"[{i:2d}/{len(cases)}] {case.function:<11} {case.group:<10} {case.label:<22} "
              f"max err {_err(r['max_error'])}  ({compiled}, run {r['run_s']:.2f} s)", flush=True)
        records.append(r)
    total = time.perf_counter() - start
    print_table(records)
    meta = {
        "sjax": sjax.__version__, "jax": jax.__version__, "backend": jax.default_backend(),
        "python": platform.python_version(), "parties": args.parties, "points": args.points,
        "frac_bits": sjax.ring.DEFAULT_FRAC_BITS, "seed": args.seed, "target": TARGET,
        "total_s": round(total, 1), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(records, meta, args.out)
    write_plot(records, args.plot)
    print(f"\n{len(records)} cases in {total:.0f} s; wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
