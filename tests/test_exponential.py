"""Tests for :func:`sjax.exp`. The plan of the nonlinear tests and their helpers are in ``_nonlinear.py``."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nonlinear import (
    EXP_BOUND,
    FRAC,
    NL_PARTIES,
    ULP,
    Grid,
    abstract_share,
    check_accuracy,
    check_cost,
    check_equal,
    evaluate,
    every_failure,
    jit,
    near,
)

import sjax
from sjax.primitives.exponential import _power_of_two_factors

# -- exp -----------------------------------------------------------------------------------------------

# Documented domain for f fractional bits: [-f ln 2, (44 - f) ln 2 - 0.001]. Below it the result is 0,
# above it it saturates at exp(high). Inputs are kept MARGIN away from both ends when the behaviour outside
# is checked: right at the boundary either regime is correct.
LN2 = math.log(2.0)
EXP_LOW = -FRAC * LN2  # -11.09
EXP_HIGH = (44 - FRAC) * LN2 - 0.001  # 19.41
MARGIN = 0.01

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


@pytest.mark.parametrize("n", NL_PARTIES)
def test_exp_cost_matches_its_docstring(keys, n):
    # Docstring: 8 rounds; each party sends 464 (n - 1) bytes per element; the dealer 984 per element.
    check_cost(sjax.cost(sjax.exp)(abstract_share((32,), n), keys()), n, 32, 8, 204, 470)


def test_exp_rejects_a_plaintext_input(keys):
    with pytest.raises(TypeError, match="exp takes an ArithShare"):
        sjax.exp(np.zeros(3), keys())


def test_power_of_two_from_the_digit_one_hots_is_exact_for_every_k():
    # Every public c and dealer rho modulo 64 (all 4096 pairs, every borrow): the four values that are
    # linear in the digit one-hots give 2^((c - rho) mod 64) exactly, on plaintext one-hots.
    c, rho = (a.ravel().astype(np.uint64) for a in np.meshgrid(np.arange(64), np.arange(64)))
    onehots = [np.eye(8, dtype=np.uint64)[(rho >> np.uint64(3 * d)) & np.uint64(7)] for d in (0, 1)]
    (a, b), (v0, v1) = _power_of_two_factors(jnp.asarray(c), [jnp.asarray(h) for h in onehots])
    got = np.asarray(a * v0 + b * v1)
    expected = np.uint64(1) << ((c - rho) & np.uint64(63))
    np.testing.assert_array_equal(got, expected)
