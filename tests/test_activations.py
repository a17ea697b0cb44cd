"""Tests for the activations built on the exponential: :func:`sjax.sigmoid`, :func:`sjax.tanh`,
:func:`sjax.silu`, :func:`sjax.erf` and :func:`sjax.gelu` (exact erf form).

The plan (one array of inputs for all the functions, one compilation per function and number of parties,
the accuracy metric and its target) is described in ``_nonlinear.py``, which holds the helpers.
Besides random points of each target domain and its ends, the inputs include 0 and its neighbours (where
the sign is restored), the points where the inner ``exp(-a)`` falls below its domain (``a = 30 ln 2`` at 30
fractional bits) and, for erf, the clip at 6; beyond the target, the rest of each documented domain
(every representable value for sigmoid, tanh and erf) with the documented saturation.
"""

import math

import numpy as np
import pytest
from _nonlinear import (
    EXP2_POLY,
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
    symmetric,
)

import sjax

_rng = np.random.default_rng(3)
INNER_EXP_LOW = 30 * math.log(2.0)  # exp(-a) at 30 fractional bits is 0 beyond this a
SEGMENT_ENDS = (2.0, 4.0, 8.0, 16.0, 32.0)  # where sigmoid(|x|) changes polynomial (and, at 32, becomes 1)

# Approximation errors stated in the module docstring of sjax.primitives.activations (exp's: EXP2_POLY).
SIGMOID_POLY = 2e-7  # the segments' polynomials of sigmoid, with the rounding of their coefficients and powers
ERFCX_POLY = 1.3e-7  # erfcx on [0, 6]: absolute


def sigmoid_polynomial_error(x):
    """How far the polynomials move sigmoid(x): at most SIGMOID_POLY, and nothing from |x| = 32 on."""
    return np.where(np.abs(x) < SEGMENT_ENDS[-1], SIGMOID_POLY, 0.0)


def repeated(points, times=16):
    """Boundary points, each several times: the protocols are randomised (stochastic rounding), and an
    input at a regime boundary may go wrong for some random draws only."""
    return np.repeat(np.asarray(points, dtype=np.float64), times)


GRID = Grid(
    4096,
    sigmoid_target=_rng.uniform(-30, 30, 400),
    sigmoid_edges=np.concatenate(
        [symmetric(30.0), near([0.0]), near(symmetric(1.0)), repeated(near(symmetric(SEGMENT_ENDS)), 4)]
    ),
    sigmoid_beyond=symmetric(31.0, 100.0, 1e3, 1e6, 1e9, 1e13),  # every representable x: saturates
    tanh_target=_rng.uniform(-10, 10, 400),
    tanh_edges=np.concatenate(
        [symmetric(10.0), near([0.0]), near(symmetric(1.0)), repeated(near(symmetric(SEGMENT_ENDS) / 2), 4)]
    ),
    tanh_beyond=symmetric(11.0, 30.0, 100.0, 1e3, 1e6, 1e9, 1e13),
    silu_target=_rng.uniform(-10, 10, 400),
    silu_edges=np.concatenate(
        [symmetric(10.0), near([0.0]), near(symmetric(1.0)), repeated(near(symmetric(SEGMENT_ENDS)), 4)]
    ),
    silu_beyond=symmetric(30.0, 100.0, 1e3, 1e4, 0.99 * 2.0 ** (32 - FRAC)),  # documented: |x| < 2^(32 - f)
    erf_target=_rng.uniform(-5, 5, 400),
    # 0, the centre of the erfcx fit (3), where exp(-a^2) vanishes, and the ends.
    erf_edges=np.concatenate(
        [
            symmetric(5.0),
            near([0.0]),
            near(symmetric(1.0, 3.0)),
            repeated(near(symmetric(math.sqrt(INNER_EXP_LOW)))),
        ]
    ),
    erf_documented=symmetric(*_rng.uniform(5, 6, 50)),
    erf_saturated=symmetric(*near([6.0], low=6.0), 6.5, 7.0, 100.0, 1e6, 1e9, 1e13),
    gelu_target=_rng.uniform(-10, 10, 400),
    # Where exp(-x^2 / 2) vanishes (x / sqrt 2 = sqrt(30 ln 2)), the centre of the erfcx fit, 0, the ends.
    gelu_edges=np.concatenate(
        [
            symmetric(10.0),
            near([0.0]),
            near(symmetric(1.0, 3.0 * math.sqrt(2.0))),
            repeated(near(symmetric(math.sqrt(2 * INNER_EXP_LOW)))),
        ]
    ),
    gelu_beyond=symmetric(20.0, 100.0, 1e3, 1e4, 0.99 * 2.0 ** (30 - FRAC)),  # documented: |x| < 2^(30 - f)
)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def exact_sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # never overflows


def exact_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


SIGMOID, TANH, SILU, ERF, GELU = (jit(f) for f in (sjax.sigmoid, sjax.tanh, sjax.silu, sjax.erf, sjax.gelu))


def check_parts(name, n, x, y, exact, bound, parts):
    for part in parts:
        s = GRID[f"{name}_{part}"]
        check_accuracy(f"{name} {part} (n={n})", x[s], y[s], exact(x[s]), bound=bound(x[s]))


# The docstrings of sigmoid, tanh, silu and erf state an absolute error "below 2^-f" (erf: 1.5 * 2^-f): the
# final rounding alone. The polynomials add to that (exp's degree-4 one up to 1e-6 here), so the bounds
# checked below add the polynomial errors that the module docstrings state, as written out in each test.


@pytest.mark.parametrize("n", NL_PARTIES)
def test_sigmoid(keys, n):
    x, y = evaluate(SIGMOID, GRID, n, keys)
    with every_failure():
        # Documented: absolute error below 2^-f for every representable x; saturates to 0 and 1.
        bound = lambda x: ULP + sigmoid_polynomial_error(x)  # noqa: E731
        check_parts("sigmoid", n, x, y, exact_sigmoid, bound, ("target", "edges", "beyond"))
        assert np.all((y >= 0) & (y <= 1)), "sigmoid left [0, 1]"


@pytest.mark.parametrize("n", NL_PARTIES)
def test_tanh(keys, n):
    x, y = evaluate(TANH, GRID, n, keys)
    with every_failure():
        # Documented: absolute error below 2^-f for every representable x; saturates to -1 and 1. tanh(a) is
        # 2 sigmoid(2a) - 1, so the sigmoid's polynomial errors count twice.
        bound = lambda x: ULP + 2 * sigmoid_polynomial_error(2 * x)  # noqa: E731
        check_parts("tanh", n, x, y, np.tanh, bound, ("target", "edges", "beyond"))
        s = GRID["tanh_beyond"]
        assert np.all(np.abs(y[s]) <= 1), "tanh left [-1, 1]"


@pytest.mark.parametrize("n", NL_PARTIES)
def test_silu(keys, n):
    x, y = evaluate(SILU, GRID, n, keys)
    with every_failure():
        # Documented: absolute error below 2^-f + |x| 2^-30 + 3.2e-6 on |x| < 2^(32 - f). silu is x times a
        # sigmoid carried at 30 bits, so |x| times that sigmoid's rounding (2^-30, up to 4 units in the last
        # place at |x| = 65000) and polynomial errors (none from |x| = 32 on). The metric (target
        # 1e-4) is checked on the whole documented domain.
        check_parts(
            "silu", n, x, y, lambda x: x * exact_sigmoid(x),
            lambda x: ULP + np.abs(x) * 2.0**-30 + 3.2e-6,
            ("target", "edges", "beyond"),
        )


@pytest.mark.parametrize("n", NL_PARTIES)
def test_erf(keys, n):
    x, y = evaluate(ERF, GRID, n, keys)
    with every_failure():
        # Documented: absolute error below 1.5 * 2^-f (a measured figure); exactly +-1 for |x| >= 6. Checked:
        # the final rounding, 2^-f, plus erfc(|x|) = exp(-x^2) erfcx(|x|) off by the rounding of x^2 (relative
        # 2^-f) and exp's polynomial (relative EXP2_POLY), plus the erfcx polynomial's error.
        check_parts(
            "erf", n, x, y, _erf, lambda x: ULP + (1 - _erf(np.abs(x))) * (ULP + EXP2_POLY) + ERFCX_POLY,
            ("target", "edges", "documented"),
        )
        s = GRID["erf_saturated"]
        check_equal(f"erf for |x| >= 6 (n={n})", x[s], y[s], np.sign(x[s]))


@pytest.mark.parametrize("n", NL_PARTIES)
def test_gelu(keys, n):
    x, y = evaluate(GELU, GRID, n, keys)
    with every_failure():
        # Documented: error below (|x| + 1) 2^-f on |x| < 2^(30 - f).
        bound = lambda x: (np.abs(x) + 1) * ULP  # noqa: E731
        check_parts("gelu", n, x, y, exact_gelu, bound, ("target", "edges", "beyond"))


# -- cost ------------------------------------------------------------------------------------------------

COSTS = {
    # From the docstrings: rounds; bytes each party sends per element, times n - 1; dealer bytes per element.
    "sigmoid": (20, 356, 482),
    "tanh": (20, 356, 482),
    "silu": (21, 380, 506),
    "erf": (24, 752.375, 996),
    "gelu": (26, 776.375, 1020),
}


@pytest.mark.parametrize("n", NL_PARTIES)
@pytest.mark.parametrize("name", COSTS)
def test_cost_matches_the_docstring(keys, name, n):
    # 64 elements: the figures per element hold for whole blocks of 64 (see sjax.bits).
    cost = sjax.cost(getattr(sjax, name))(abstract_share((64,), n), keys())
    check_cost(cost, n, 64, *COSTS[name])


@pytest.mark.parametrize("name", COSTS)
def test_a_plaintext_input_is_a_type_error(keys, name):
    with pytest.raises(TypeError, match=f"{name} takes an ArithShare"):
        getattr(sjax, name)(np.ones(3), keys())

