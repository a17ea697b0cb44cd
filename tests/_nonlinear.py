"""Helpers shared by the tests of the nonlinear functions, and the plan those tests follow.

The nonlinear test modules (``test_exponential``, ``test_normalize``, ``test_activations``, ``test_trig``,
``test_power``, ``test_softmax``) follow one plan:

* **Accuracy.** The metric of the accuracy issue: ``max |y - ref| / max(1, |ref|)`` over the inputs, where
  ``ref`` is the exact float64 function of the input *as encoded* (``sjax.reveal`` of its share), so that the
  figure is the protocol's own error and not the rounding of its input; softmax and log_softmax use the
  absolute error ``max |y - ref|``. The target is ``TARGET = 1e-4`` on each function's target domain. Where
  a docstring states a tighter elementwise bound (say ``2^-f`` absolute), that bound is checked as well.
* **Inputs.** Random points of the target domain, its edges, the points where the range reduction changes
  regime (powers of two, multiples of ``ln 2`` or ``pi / 2``, plus and minus one unit in the last place),
  the rest of the documented domain, and inputs outside it, where the documented behaviour is checked
  (saturation, an exact 0 or 1, ...). Revealed values are decoded ring elements and so always finite;
  "never NaN" is asserted anyway, and every out-of-domain input runs in the same array as in-domain ones,
  so an overflow that leaked into other elements would show.
* **Compile time is the constraint** (each protocol is a large program; 5 to 20 s to compile on a small
  machine, per input shape and number of parties). So each module lays the inputs of all its functions
  back to back in ONE array (a :class:`Grid`), each function is jitted once and runs on the whole array,
  and each test checks the slices it owns. One test covers one ``(function, parties)`` pair completely
  (accuracy, edges, out-of-domain behaviour, determinism), so that under ``pytest -n`` no two workers
  compile the same program. The programs are compiled with XLA's backend optimisation level 0, which
  cuts compile time about threefold: the protocols are integer ring arithmetic, exact under any
  optimisation, and ``test_exponential.test_the_optimisation_level_changes_no_bit`` checks that the default
  compilation gives bit-identical shares.
* **Parties:** 2 and 3, jitted. **Cost:** ``sjax.cost`` against each docstring's rounds and bytes.
* **Determinism:** the same key gives bit-identical shares; a fresh key gives fresh shares.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

import sjax

TARGET = 1e-4
FRAC = sjax.ring.DEFAULT_FRAC_BITS
ULP = 2.0**-FRAC
NL_PARTIES = (2, 3)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
jit = functools.partial(jax.jit, compiler_options=COMPILER_OPTIONS)

# exp's stated errors, which the functions built on it inherit: relative |y - e^x| / max(1, e^x) below
# EXP_BOUND on its domain (its docstring), and the relative error of the degree-6 polynomial for 2^r,
# r in (-1, 1) (the module docstring of sjax.primitives.exponential).
EXP_BOUND = 2.5e-5
EXP2_POLY = 5.1e-7


class Grid:
    """Named segments of plaintext inputs, back to back in one zero-padded array of ``size`` values."""

    def __init__(self, size: int, **segments):
        self.slices, parts, start = {}, [], 0
        for name, values in segments.items():
            values = np.asarray(values, dtype=np.float64).ravel()
            self.slices[name] = slice(start, start + values.size)
            parts.append(values)
            start += values.size
        assert start <= size, f"the segments hold {start} values, more than the grid's {size}"
        self.values = np.pad(np.concatenate(parts), (0, size - start))

    def share(self, key, n: int) -> sjax.ArithShare:
        return sjax.share(self.values, key, n_parties=n)

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]


def run_deterministic(fn, args, keys, *, fresh_shares: bool = True) -> sjax.ArithShare:
    """``fn(*args, key)`` for a fresh key; runs it again on a copy of the key (the shares must be
    bit-identical) and, with ``fresh_shares``, on another key (every share must change)."""
    key = keys()
    out = fn(*args, key)
    again = fn(*args, jax.random.clone(key))  # same key material, a separate key for the reuse checker
    assert np.array_equal(np.asarray(out.shares), np.asarray(again.shares)), "same key, different shares"
    if fresh_shares:
        other = fn(*args, keys())
        # Fresh masks everywhere: an equal 64-bit share by chance has probability 2^-64 per element.
        assert not np.any(np.asarray(out.shares) == np.asarray(other.shares)), "a fresh key reused a share"
    return out


def evaluate(fn, grid: Grid, n: int, keys, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Shares the grid for ``n`` parties and runs ``fn(share, key)`` (see :func:`run_deterministic`).

    Returns ``(x, y)``: the inputs as encoded and the revealed results, as float64 arrays.
    """
    xs = grid.share(keys(), n)
    out = run_deterministic(fn, (xs,), keys, **kwargs)
    assert isinstance(out, sjax.ArithShare) and (out.n_parties, out.frac_bits) == (n, FRAC)
    assert out.shape == xs.shape
    return np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(out))


_collected: list[str] | None = None


@contextlib.contextmanager
def every_failure():
    """Inside, a failed :func:`check_accuracy` or :func:`check_equal` does not stop the test: the failures
    are reported together at the end, so that one test names every failure of its function."""
    global _collected
    outer, _collected = _collected, []
    try:
        yield
        failures = _collected
    finally:
        _collected = outer
    assert not failures, "\n".join(failures)


def _fail(message: str) -> None:
    if _collected is None:
        raise AssertionError(message)
    _collected.append(message)


def check_accuracy(what, x, y, ref, *, bound=None, target=TARGET, relative=True) -> float:
    """Asserts the issue's metric ``|y - ref| / max(1, |ref|)`` (``relative=False``: ``|y - ref|``) is at
    most ``target`` (``None``: no target) and, if given, ``|y - ref| <= bound`` elementwise (a documented
    bound).

    Returns the largest metric; prints it (``pytest -rP`` shows it).
    """
    x, y, ref = (np.asarray(a, dtype=np.float64).ravel() for a in np.broadcast_arrays(x, y, ref))
    assert np.all(np.isfinite(y)), f"{what}: non-finite output at x = {x[~np.isfinite(y)][:5]}"
    error = np.abs(y - ref)
    metric = error / np.maximum(1.0, np.abs(ref)) if relative else error
    i = int(np.argmax(metric))
    print(f"{what}: max error {metric[i]:.3g} at x = {x[i]!r}")
    if target is not None and not metric[i] <= target:
        got = f"got {y[i]!r}, exact {ref[i]!r}"
        _fail(f"{what}: error {metric[i]:.3g} at x = {x[i]!r} ({got}), target {target}")
    if bound is not None:
        bound = np.broadcast_to(np.asarray(bound, dtype=np.float64).ravel(), error.shape)
        j = int(np.argmax(error - bound))
        if not error[j] <= bound[j]:
            _fail(
                f"{what}: |y - exact| = {error[j]:.3g} at x = {x[j]!r} (got {y[j]!r}, exact {ref[j]!r}) is "
                f"above the documented bound {bound[j]:.3g}"
            )
    return float(metric[i])


def check_equal(what, x, y, expected):
    """Asserts ``y == expected`` exactly (a documented exact value outside the domain)."""
    x, y, expected = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, expected)))
    assert np.all(np.isfinite(y)), f"{what}: non-finite output"
    wrong = y != expected
    if wrong.any():
        _fail(f"{what}: at x = {x[wrong][:5]} got {y[wrong][:5]}, expected {expected[wrong][:5]}")


def abstract_share(shape, n: int) -> sjax.ArithShare:
    """A share of ``shape`` for ``n`` parties with no values: all that :func:`sjax.cost` needs."""
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, *shape), jnp.uint64))


def near(points, low=-np.inf, high=np.inf):
    """Each point and its neighbours one unit in the last place away, kept inside ``[low, high]``."""
    points = np.asarray(points, dtype=np.float64)
    around = np.concatenate([points - ULP, points, points + ULP])
    return around[(around >= low) & (around <= high)]


def symmetric(*values) -> np.ndarray:
    """The values (scalars or arrays) and their negatives, flattened."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values])
    return np.concatenate([values, -values])


def log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    """``size`` values whose logarithms are uniform in ``[log low, log high]``."""
    return 10.0 ** rng.uniform(np.log10(low), np.log10(high), size)


def check_cost(cost, n, size, rounds, per_element, dealer_per_element):
    """Asserts the figures of a docstring's "Cost: R rounds; each party sends B * (n - 1) bytes per
    element; the dealer sends D bytes per element" for ``size`` elements."""
    assert (cost.rounds, cost.bytes_per_party, cost.dealer_bytes) == (
        rounds,
        per_element * (n - 1) * size,
        dealer_per_element * size,
    )
