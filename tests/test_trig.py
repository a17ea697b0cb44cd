"""Tests for :func:`sjax.sin` and :func:`sjax.cos`.

The plan (one array of inputs for both functions, one compilation per function and number of parties, the
accuracy metric and its target) is described in ``_nonlinear.py``, which holds the helpers. Besides
random points of the target ``[-100, 100]``, the inputs include its ends, 0, and every multiple of
``pi / 2`` in it with its neighbours one unit in the last place away (where the reduction modulo the period
and the quarter-angle polynomials change regime), then the rest of the documented domain
``|x| < 2 pi 2^(26 - f)`` (about 6430) and values beyond it, where the result is documented as finite but
meaningless.
"""

import math

import numpy as np
import pytest
from _nonlinear import (
    FRAC,
    NL_PARTIES,
    ULP,
    Grid,
    abstract_share,
    check_accuracy,
    check_cost,
    evaluate,
    every_failure,
    jit,
    near,
)

import sjax

_rng = np.random.default_rng(5)
DOMAIN = 2 * math.pi * 2.0 ** (26 - FRAC)  # documented bound on |x|
QUARTERS = np.arange(-63, 64) * (math.pi / 2)  # the multiples of pi/2 in [-100, 100]

GRID = Grid(
    2048,
    target=_rng.uniform(-100, 100, 600),
    edges=np.concatenate([[-100.0, 100.0], near(QUARTERS)]),
    documented=np.concatenate(
        [
            _rng.uniform(-0.99 * DOMAIN, 0.99 * DOMAIN, 300),
            near(np.array([-1, 1]) * 0.99 * DOMAIN),
            near([1e3 * math.pi]),
        ]
    ),
    beyond=[1.01 * DOMAIN, -1.01 * DOMAIN, 1e4, -1e5, 1e6, 1e9, -1e12],  # finite, meaningless
)
SIN, COS = jit(sjax.sin), jit(sjax.cos)


@pytest.mark.parametrize("n", NL_PARTIES)
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_and_cos(keys, name, n):
    fn, exact = (SIN, np.sin) if name == "sin" else (COS, np.cos)
    x, y = evaluate(fn, GRID, n, keys)
    with every_failure():
        for part in ("target", "edges", "documented"):
            s = GRID[part]
            # Documented: absolute error below 2^-f on the whole domain (it does not grow with |x|).
            check_accuracy(f"{name} {part} (n={n})", x[s], y[s], exact(x[s]), bound=ULP)
        # Beyond the domain the result is finite but meaningless; it may not disturb the other elements.
        assert np.all(np.isfinite(y[GRID["beyond"]]))


@pytest.mark.parametrize("n", NL_PARTIES)
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_cost_matches_the_docstring(keys, name, n):
    cost = sjax.cost(getattr(sjax, name))(abstract_share((5,), n), keys())
    # Docstring: 16 rounds; each party sends 408 (n - 1) bytes per element; the dealer 456 per element.
    check_cost(cost, n, 5, 16, 408, 456)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_a_plaintext_input_is_a_type_error(keys, name):
    with pytest.raises(TypeError, match=f"{name} takes an ArithShare"):
        getattr(sjax, name)(np.ones(3), keys())
