"""Tests for :func:`sjax.softmax`, :func:`sjax.log_softmax` and :func:`sjax.layer_norm`.

The plan (one compilation per function, input shape and number of parties; the accuracy metric and its
target) is described in ``_nonlinear.py``, which holds the helpers. The reference is plaintext JAX in
float64 (``jax.nn.softmax``, ``jax.nn.log_softmax``, ``jax.nn.standardize``) on the inputs as encoded.

softmax and log_softmax are measured by the absolute error (the issue's metric for them) on rows of length
2 (along ``axis=0``), 3 and 100, for 2 and 3 parties, and of length 1000 once (slow: about a minute to
compile). Besides random logits of the target ``[-30, 30]``, the rows hold ties and near-ties, the
extremes ``-30`` and ``30`` (a spread of 60, where most exponentials vanish) and differences next to
``-30 ln 2``, below which the exponentials (at 30 fractional bits) are 0; two more rows lie outside the
target but in the documented domain (any representable difference): logits near ``10^4``, and a spread of
``2 * 10^4``. layer_norm runs on rows of 100 values whose standard deviations span the issue's ``1e-1`` to
``1e2``, with means up to +-1000 at the smallest, with a scale and a bias (public for 2 parties, secret
for 3), and on the rest of its documented domain.
"""

import math

import jax
import numpy as np
import pytest
from _nonlinear import (
    EXP2_POLY,
    NL_PARTIES,
    ULP,
    abstract_share,
    check_accuracy,
    every_failure,
    jit,
    run_deterministic,
)

import sjax

_rng = np.random.default_rng(6)

# exp(d) of a difference d <= 0 is computed at 30 fractional bits, and is 0 below d = -30 ln 2: the encoded
# differences next to that boundary.
BOUNDARY = np.round(-30 * math.log(2.0) / ULP + np.array([-1, 0, 1])) * ULP


def _row(first, differences, length):
    """A row of ``length`` logits: ``first``, then ``first`` plus each difference in turn (cyclically)."""
    return first + np.concatenate([[0.0], np.resize(np.asarray(differences, dtype=np.float64), length - 1)])


def _logits(rows, length):
    """``(target, beyond)``: ``rows`` rows of ``length`` logits in the target ``[-30, 30]``, and two rows
    outside it."""
    encoded_maxima = np.round(_rng.uniform(-9, 30, 16) / ULP) * ULP  # so that the differences are exact
    special = [
        _row(_rng.uniform(-30, 30), [0.0], length),  # all tied
        _row(_rng.uniform(-29, 29), [ULP, -ULP, 1e-3, -1e-3, 0.0], length),  # near-ties
        _row(30.0, [-60.0, 0.0], length),  # the extremes
        # Each boundary difference several times: the protocols are randomised (stochastic rounding).
        *(_row(m, np.roll(BOUNDARY, i), length) for i, m in enumerate(encoded_maxima)),
    ]
    target = np.concatenate([special, _rng.uniform(-30, 30, (rows - len(special), length))])
    beyond = np.stack([_row(1e4, _rng.uniform(-30, 30, length - 1), length), _row(1e4, [-2e4], length)])
    return target, beyond


# length: (rows, axis). Rows of 2 run along axis 0, so that the axis argument is exercised.
SHAPES = {2: (500, 0), 3: (200, -1), 100: (30, -1), 1000: (20, -1)}
LOGITS = {length: _logits(rows, length) for length, (rows, _) in SHAPES.items()}
SOFTMAX = {
    (name, axis): jit(lambda x, key, f=getattr(sjax, name), axis=axis: f(x, key, axis=axis))
    for name in ("softmax", "log_softmax")
    for axis in (0, -1)
}


def check_softmax(keys, name, length, n):
    target, beyond = LOGITS[length]
    axis = SHAPES[length][1]
    values = np.concatenate([target, beyond])
    xs = sjax.share(values.T if axis == 0 else values, keys(), n_parties=n)
    out = run_deterministic(SOFTMAX[name, axis], (xs,), keys)
    assert out.shape == xs.shape and out.n_parties == n
    x, y = np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(out))
    if axis == 0:
        x, y = x.T, y.T
    exact = np.asarray(getattr(jax.nn, name)(x, axis=-1))
    # Documented: softmax, |y - exact| below 2^-f + 8e-6 y + (L + 2) 2^-30 (the 8e-6: exp's polynomial twice,
    # on an exponential and on the sum, and the reciprocal's); log_softmax, below 2^-f + 2^-24 + 3.8e-6 +
    # L 2^-30.
    if name == "softmax":
        bound = ULP + (2 * EXP2_POLY + 3.1e-7) * exact + (length + 2) * 2.0**-30
    else:
        bound = np.full(exact.shape, ULP + 2.0**-24 + EXP2_POLY + length * 2.0**-30)
    what = f"{name} along an axis of length {length} (n={n})"
    rows = len(target)
    with every_failure():
        for part, s in (("target", slice(None, rows)), ("documented", slice(rows, None))):
            check_accuracy(f"{what}, {part}", x[s], y[s], exact[s], bound=bound[s], relative=False)
        if name == "softmax":
            assert np.all(y >= 0) and np.all(y <= 1 + ULP)


# Each (function, length) for one party count, alternating, so that each function and each length runs for
# both 2 and 3 parties (each case is a compile of its own, 20 to 45 s on a 2-core machine).
SOFTMAX_CASES = [
    ("softmax", 2, 2), ("softmax", 3, 3), ("softmax", 100, 2),
    ("log_softmax", 2, 3), ("log_softmax", 3, 2), ("log_softmax", 100, 3),
]  # fmt: skip
assert {n for *_, n in SOFTMAX_CASES} == set(NL_PARTIES)


@pytest.mark.parametrize("name, length, n", SOFTMAX_CASES)
def test_softmax_and_log_softmax(keys, name, length, n):
    check_softmax(keys, name, length, n)


@pytest.mark.slow
def test_softmax_of_rows_of_1000(keys):
    # The longest rows of the target, once: the max tree and the sum are shared with log_softmax.
    check_softmax(keys, "softmax", 1000, 3)


# Docstrings: 9 ceil(log2 L) + R rounds; per row of L, each party sends (a L + b) (n - 1) bytes, the
# dealer c L + d (for a multiple of 64 rows: signs are computed in blocks of 64).
SOFTMAX_COSTS = {
    "softmax": (25, 236.125, 257.875, 486, 865),
    "log_softmax": (22, 212.125, 233.875, 462, 689),
}


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("length", [1, 2, 3, 10, 100, 1000])
def test_softmax_cost_matches_the_docstring(keys, name, length):
    rounds, a, b, c, d = SOFTMAX_COSTS[name]
    rows = 64
    for n in NL_PARTIES:
        x = abstract_share((rows, length), n)
        cost = sjax.cost(lambda x, key: getattr(sjax, name)(x, key, axis=-1))(x, keys())
        assert cost.rounds == 9 * math.ceil(math.log2(length)) + rounds
        assert cost.bytes_per_party == rows * (n - 1) * (a * length + b)
        assert cost.dealer_bytes == rows * (c * length + d)


def test_softmax_of_a_0d_share_is_a_value_error(keys):
    x = sjax.share(1.0, keys(), n_parties=2)
    for f in (sjax.softmax, sjax.log_softmax):
        with pytest.raises(ValueError, match="needs an axis"):
            f(x, keys())


# -- layer_norm ------------------------------------------------------------------------------------------

# 20 rows with standard deviations from 1e-1 to 1e2 and means in [-100, 100]; rows at the smallest standard
# deviation with means 0, +-100 and +-1000 (where the mean's error, divided by the standard deviation, shows);
# then the rest of the documented domain (row means below 2^24 / L, |x - mean| < 2^11): means of +-10^5 and
# a standard deviation of 500.
LENGTH = 100
STDS = np.concatenate([np.geomspace(0.1, 100.0, 20), np.full(5, 0.1), [0.1, 0.1, 500.0]])
MEANS = np.concatenate([_rng.uniform(-100, 100, 20), [0.0, 100.0, -100.0, 1000.0, -1000.0, 1e5, -1e5, 0.0]])


def _rows():
    z = _rng.standard_normal((STDS.size, LENGTH))
    z = (z - z.mean(-1, keepdims=True)) / z.std(-1, keepdims=True)  # the stated means and deviations exactly
    assert np.all(np.abs(STDS[:, None] * z) < 2**11)
    return MEANS[:, None] + STDS[:, None] * z


ROWS_VALUES = _rows()
# Encoded exactly, so that the reference uses the scale and bias that the protocol sees, public or secret.
SCALE = np.round(_rng.uniform(0.5, 2.0, LENGTH) * _rng.choice([-1.0, 1.0], LENGTH) / ULP) * ULP
BIAS = np.round(_rng.uniform(-1.0, 1.0, LENGTH) / ULP) * ULP
EPSILON = 1e-6  # layer_norm's default
LAYER_NORM = {
    axis: jit(lambda x, scale, bias, key, axis=axis: sjax.layer_norm(x, key, axis, scale=scale, bias=bias))
    for axis in (0, -1)
}


@pytest.mark.parametrize("n, axis", [(2, 0), (3, -1)])
def test_layer_norm(keys, n, axis):
    # Rows along axis 0 (the transpose) with a public scale and bias for 2 parties; along axis -1 with a
    # secret scale and bias for 3.
    values = ROWS_VALUES.T if axis == 0 else ROWS_VALUES
    scale, bias = (SCALE[:, None], BIAS[:, None]) if axis == 0 else (SCALE, BIAS)
    xs = sjax.share(values, keys(), n_parties=n)
    if n == 3:
        scale, bias = sjax.share(scale, keys(), n_parties=n), sjax.share(bias, keys(), n_parties=n)
    out = run_deterministic(LAYER_NORM[axis], (xs, scale, bias), keys)
    assert out.shape == values.shape
    x, y = np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(out))
    if axis == 0:
        x, y = x.T, y.T
    exact = np.asarray(jax.nn.standardize(x, axis=-1, epsilon=EPSILON, algorithm="stable")) * SCALE + BIAS
    with every_failure():
        for i in range(STDS.size):
            what = f"layer_norm, row of mean {MEANS[i]:.3g} and std {STDS[i]:.3g} (n={n}, axis={axis})"
            check_accuracy(what, x[i], y[i], exact[i])


@pytest.mark.parametrize("length", [2, 3, 10, 100])
def test_layer_norm_cost_matches_the_docstring(keys, length):
    # Docstring: 22 rounds (23 with a public scale, 24 with a secret one); each party sends
    # (56 L + 344) (n - 1) bytes per row, 16 fewer when L is a power of two; the dealer 64 L + 984, 32
    # fewer.
    power_of_two = length & (length - 1) == 0
    rows = 64
    for n in NL_PARTIES:
        x = abstract_share((rows, length), n)
        cost = sjax.cost(sjax.layer_norm)(x, keys())
        assert cost.rounds == 22
        assert cost.bytes_per_party == rows * (n - 1) * (56 * length + 344 - 16 * power_of_two)
        assert cost.dealer_bytes == rows * (64 * length + 984 - 32 * power_of_two)
        public = np.full(length, 0.5)
        with_public = sjax.cost(lambda x, key: sjax.layer_norm(x, key, scale=public, bias=public))(x, keys())
        scale = abstract_share((length,), n)
        with_secret = sjax.cost(lambda x, s, key: sjax.layer_norm(x, key, scale=s, bias=s))(x, scale, keys())
        assert (with_public.rounds, with_secret.rounds) == (23, 24)
