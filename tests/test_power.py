"""Tests for :func:`sjax.pow`, ``x ** p`` for a public exponent ``p``.

The plan (one array of inputs for every exponent, one compilation per exponent and number of parties, the
accuracy metric and its target) is described in ``_nonlinear.py``, which holds the helpers. Each
exponent is tested on its documented domain: positive integers (square-and-multiply) where every
intermediate power stays below ``2^(31 - f)``, with 0, +-1 and the ends; 0 and 1 (exact, for any ``x``);
negative integers (the reciprocal, then its power) on both signs of the reciprocal's target; fractional
exponents (``exp(p log x)``) on positive ``x``, with the powers of two where the logarithm's normalisation
changes regime.
"""

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
    check_equal,
    evaluate,
    every_failure,
    jit,
    log_uniform,
    near,
    symmetric,
)

import sjax

_rng = np.random.default_rng(4)


INTERMEDIATE = 2.0 ** (31 - FRAC)  # documented bound on every intermediate power
POSITIVE = np.concatenate([log_uniform(_rng, 1e-2, 1e4, 200), near(2.0 ** np.arange(-6, 14)), [1e-2, 1e4]])

GRID = Grid(
    2048,
    # p = 3: |x|^3 < 2^15 for |x| < 31.7; p = 5: |x|^5 < 2^15 for |x| < 8.
    cube=np.concatenate([_rng.uniform(-31.5, 31.5, 200), near([0.0]), symmetric([1.0, 31.5])]),
    fifth=np.concatenate([_rng.uniform(-7.9, 7.9, 200), near([0.0]), symmetric([1.0, 7.9])]),
    # Negative integers: the reciprocal's target, both signs; 1/x to the power |p| stays below 2^15.
    negative=symmetric(
        np.concatenate([log_uniform(_rng, 1e-2, 1e4, 150), near(2.0 ** np.arange(-6, 14)), [1e-2, 1e4]])
    ),
    zero=[0.0],
    positive=POSITIVE,  # fractional exponents
    nonpositive=[-1.0, -1e3, -ULP],  # fractional exponents: finite, meaningless
)

EXPONENTS = [3, 5, -1, -2, 0.5, -1.5]
PART = {3: "cube", 5: "fifth", -1: "negative", -2: "negative", 0.5: "positive", -1.5: "positive"}
POW = {p: jit(lambda x, key, p=p: sjax.pow(x, p, key)) for p in [*EXPONENTS, 0, 1]}


def documented_bound(p, x, exact):
    """The docstring's error, read as a bound on ``|y - x^p|``.

    * integer ``p >= 1``: "the relative error grows like ``p 2^-f``": ``p 2^-f max(1, |x^p|)``;
    * integer ``p < 0``: the power ``|p|`` of ``1/x``, whose documented error is
      ``|1/x| 2^-21 + 2^-f`` (see :func:`sjax.reciprocal`): relative error ``|p|`` times the reciprocal's,
      plus the power's own ``|p| 2^-f max(1, |x^p|)``;
    * fractional ``p``: "relative error about ``|p log x| 2^-f`` plus exp's" (exp's is ``2e-5 max(1, e^x)``):
      ``(|p log x| + 1) 2^-f`` relative, the ``+ 1`` for "about", plus ``EXP_BOUND``, both times
      ``max(1, |x^p|)``.
    """
    scale = np.maximum(1.0, np.abs(exact))
    if float(p).is_integer() and p > 0:
        return p * ULP * scale
    if float(p).is_integer():
        reciprocal_relative = 2.0**-21 + ULP * np.abs(x)
        return abs(p) * (reciprocal_relative * np.abs(exact) + ULP * scale)
    return ((np.abs(p * np.log(x)) + 1) * ULP + EXP_BOUND) * scale


# The exponents that run the reciprocal (-1, -2) or the fractional path (0.5, -1.5) are costly to compile:
# each pair splits between 2 and 3 parties, so each path runs for both (the protocols differ between party
# counts only in their openings).
POW_CASES = [(3, 2), (3, 3), (5, 2), (5, 3), (-1, 2), (-2, 3), (0.5, 3), (-1.5, 2)]
assert {p for p, _ in POW_CASES} == set(EXPONENTS)


@pytest.mark.parametrize("p, n", POW_CASES)
def test_pow(keys, p, n):
    x, y = evaluate(POW[p], GRID, n, keys)
    s = GRID[PART[p]]
    exact = x[s] ** p
    with every_failure():
        check_accuracy(f"pow p={p} (n={n})", x[s], y[s], exact, bound=documented_bound(p, x[s], exact))
        if p < 0 and float(p).is_integer():
            s = GRID["zero"]  # the reciprocal of 0 is 0
            check_equal(f"pow(0, {p}) (n={n})", x[s], y[s], 0.0)
        if not float(p).is_integer():
            assert np.all(np.isfinite(y[GRID["nonpositive"]]))  # x <= 0: finite, meaningless


@pytest.mark.parametrize("n", NL_PARTIES)
@pytest.mark.parametrize("p", [0, 1])
def test_pow_zero_and_one_are_exact(keys, p, n):
    # x ** 0 = 1 for every x (0 ** 0 included, as in numpy); x ** 1 = x. Neither needs randomness.
    x, y = evaluate(POW[p], GRID, n, keys, fresh_shares=False)
    check_equal(f"pow p={p} (n={n})", x, y, x**p)


@pytest.mark.parametrize(
    "p, rounds, products",
    [
        (2, 2, 1),  # one squaring
        (3, 4, 2),  # square, multiply
        (5, 6, 3),  # square, square, multiply
        (8, 6, 3),  # three squarings
        (7, 8, 4),  # square, multiply, square, multiply
        (-1, 15, 0),  # the reciprocal
        (-3, 19, 2),
        (0.5, 22, None),
        (-1.5, 22, None),
    ],
)
def test_pow_cost_matches_the_docstring(keys, p, rounds, products):
    # Docstring: 2 rounds and 24 (n - 1) bytes per element for each squaring and each multiply, plus 15
    # rounds (the reciprocal's) for a negative exponent; fractional p: 22 rounds, 492 (n - 1) bytes (32
    # elements: exp's two sign bits each fill whole blocks of 64).
    for n in NL_PARTIES:
        x = abstract_share((32,), n)
        cost = sjax.cost(lambda x, key: sjax.pow(x, p, key))(x, keys())
        assert cost.rounds == rounds
        if products is None:
            assert cost.bytes_per_party == 492 * (n - 1) * 32
        else:
            inverse = sjax.cost(sjax.reciprocal)(x, keys()).bytes_per_party if p < 0 else 0
            assert cost.bytes_per_party == products * 24 * (n - 1) * 32 + inverse


@pytest.mark.parametrize("p", [0, 1])
def test_pow_zero_and_one_cost_nothing(keys, p):
    cost = sjax.cost(lambda x, key: sjax.pow(x, p, key))(abstract_share((5,), 3), keys())
    assert (cost.rounds, cost.bytes_per_party) == (0, 0)


@pytest.mark.parametrize(
    "exponent, error",
    [(True, TypeError), ("2", TypeError), (None, TypeError), (np.array([2.0]), TypeError),
     (float("inf"), ValueError), (float("nan"), ValueError)],
)
def test_pow_rejects_a_bad_exponent(keys, exponent, error):
    x = sjax.share(np.ones(3), keys(), n_parties=2)
    with pytest.raises(error, match="exponent"):
        sjax.pow(x, exponent, keys())


def test_pow_rejects_a_plaintext_base(keys):
    with pytest.raises(TypeError, match="pow takes an ArithShare"):
        sjax.pow(np.ones(3), 2, keys())
