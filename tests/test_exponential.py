"""Tests for :func:`sjax.exp`, and the helpers that the tests of every nonlinear function share.

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
  optimisation, and :func:`test_the_optimisation_level_changes_no_bit` checks that the default compilation
  gives bit-identical shares.
* **Parties:** 2 and 3, jitted. **Cost:** ``sjax.cost(f)(...).rounds`` against each docstring's figure.
* **Determinism:** the same key gives bit-identical shares; a fresh key gives fresh shares.

This module also holds those shared helpers; the other modules import them from here.
"""

from __future__ import annotations

import contextlib
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax

TARGET = 1e-4
FRAC = sjax.ring.DEFAULT_FRAC_BITS
ULP = 2.0**-FRAC
NL_PARTIES = (2, 3)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
jit = functools.partial(jax.jit, compiler_options=COMPILER_OPTIONS)


# -- helpers shared by the nonlinear test modules ------------------------------------------------------


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


# -- exp -----------------------------------------------------------------------------------------------

# Documented domain for f fractional bits: [-f ln 2, (44 - f) ln 2 - 0.001]. Below it the result is 0,
# above it it saturates at exp(high). Inputs are kept MARGIN away from both ends when the behaviour outside
# is checked: right at the boundary either regime is correct.
LN2 = math.log(2.0)
EXP_LOW = -FRAC * LN2  # -11.09
EXP_HIGH = (44 - FRAC) * LN2 - 0.001  # 19.41
MARGIN = 0.01
EXP_BOUND = 2e-5  # documented: relative |y - e^x| / max(1, e^x) below 2e-5 on the domain
EXP2_POLY = 3.8e-6  # module docstring: relative error of the degree-4 polynomial for 2^r, r in [0, 1)

_rng = np.random.default_rng(1)
EXP_GRID = Grid(
    1024,
    target=_rng.uniform(-16.0, 16.0, 500),
    # The ends of the target, 0, and the multiples of ln 2 where the range reduction's integer part steps.
    edges=np.concatenate(
        [[-16.0, 16.0], near([0.0, -1.0, 1.0]), near(np.arange(-16, 28) * LN2, -16, EXP_HIGH)]
    ),
    documented=_rng.uniform(16.0, EXP_HIGH - MARGIN, 100),  # the rest of the documented domain
    below=[EXP_LOW - MARGIN, -11.5, -12.0, -16.0, -16.0 - ULP, -20.0, -50.0, -1e3, -1e6, -1e12],
    above=[EXP_HIGH + MARGIN, 19.5, 20.0, 25.0, 44.0, 50.0, 100.0, 1e3, 1e6, 1e12],
)
EXP = jit(sjax.exp)


@pytest.mark.parametrize("n", NL_PARTIES)
def test_exp(keys, n):
    x, y = evaluate(EXP, EXP_GRID, n, keys)
    with every_failure():
        for part in ("target", "edges", "documented"):
            s = EXP_GRID[part]
            exact = np.exp(x[s])
            check_accuracy(f"exp {part} (n={n})", x[s], y[s], exact, bound=EXP_BOUND * np.maximum(1, exact))
        # Below the domain: exactly 0. Above it: saturates at exp(high) (to the target: the docstring rounds
        # high to 0.001), however far above.
        s = EXP_GRID["below"]
        check_equal(f"exp below the domain (n={n})", x[s], y[s], 0.0)
        s = EXP_GRID["above"]
        check_accuracy(f"exp above the domain (n={n})", x[s], y[s], math.exp(EXP_HIGH))


def test_the_optimisation_level_changes_no_bit(keys):
    """The default compilation and the fast one used by these tests give bit-identical shares."""
    xs = EXP_GRID.share(keys(), 3)
    key = keys()
    fast = EXP(xs, key)
    default = jax.jit(sjax.exp)(xs, jax.random.clone(key))
    assert np.array_equal(np.asarray(fast.shares), np.asarray(default.shares))


def check_cost(cost, n, size, rounds, per_element, dealer_per_element):
    """Asserts the figures of a docstring's "Cost: R rounds; each party sends B * (n - 1) bytes per
    element; the dealer sends D bytes per element" for ``size`` elements."""
    assert (cost.rounds, cost.bytes_per_party, cost.dealer_bytes) == (
        rounds,
        per_element * (n - 1) * size,
        dealer_per_element * size,
    )


@pytest.mark.parametrize("n", NL_PARTIES)
def test_exp_cost_matches_its_docstring(keys, n):
    # Docstring: 16 rounds; each party sends 824 (n - 1) bytes per element; the dealer 528 per element.
    check_cost(sjax.cost(sjax.exp)(abstract_share((5,), n), keys()), n, 5, 16, 824, 528)


def test_exp_rejects_a_plaintext_input(keys):
    with pytest.raises(TypeError, match="exp takes an ArithShare"):
        sjax.exp(np.zeros(3), keys())
