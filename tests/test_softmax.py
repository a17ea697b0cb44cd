"""Tests for :func:`sjax.softmax`, :func:`sjax.log_softmax` and :func:`sjax.layer_norm`.

The plan (one compilation per function, axis and number of parties; the accuracy metric and its target)
is described in ``test_exponential.py``, which holds the helpers. softmax and log_softmax are measured by
the absolute error (the issue's metric for them) on one ``(2, 1000)`` array of logits, along ``axis=0``
(1000 rows of length 2, the shortest) and ``axis=1`` (2 rows of length 1000, the longest). Its columns
pair logits drawn from the target ``[-30, 30]`` with ties and near-ties, with differences next to
``-30 ln 2`` (below which the exponentials, at 30 fractional bits, are 0), with the extremes ``-30`` and
``30`` (a spread of 60, where most exponentials vanish) and with logits near ``10^4`` (differences far
outside ``[-30, 30]``, still in the documented domain: any representable difference); its first row is
the target's, its second row mixes all of these. layer_norm runs on rows of 100 values whose standard
deviations span the issue's ``1e-1`` to ``1e2``, along ``axis=-1`` for 3 parties and ``axis=0`` (the
transpose) for 2; the row means go up to +-1000 (documented: up to 32768).
"""

import math

import numpy as np
import pytest
from test_exponential import (
    EXP2_POLY,
    NL_PARTIES,
    ULP,
    abstract_share,
    check_accuracy,
    jit,
    run_deterministic,
)

import sjax

_rng = np.random.default_rng(6)


# exp(d) of a difference d <= 0 is computed at 30 fractional bits, and is 0 below d = -30 ln 2: the
# encoded differences next to that boundary, each several times (the protocols are randomised).
BOUNDARY = np.repeat(np.round(-30 * math.log(2.0) / ULP + np.array([-1, 0, 1])) * ULP, 16)


def _logits():
    first = _rng.uniform(-30, 30, 1000)
    first[:4] = [-30.0, 30.0, 0.0, 30.0]
    first[300:348] = np.round(_rng.uniform(-9, 30, 48) / ULP) * ULP  # exactly encoded, see below
    offsets = np.concatenate([[0.0] * 20, [ULP, -ULP, 1e-3, -1e-3] * 5, _rng.uniform(-1, 1, 260)])
    second = np.concatenate(
        [
            first[:300] + offsets,  # ties and near-ties with the first row
            first[300:348] + BOUNDARY,  # differences at the boundary of exp's domain
            _rng.uniform(-30, 30, 352),
            _rng.choice([-30.0, 30.0], 200),  # the extremes: spreads of up to 60
            1e4 + _rng.uniform(-30, 30, 100),  # far from the first row
        ]
    )
    return np.stack([first, second])


LOGITS = _logits()


def exact_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def exact_softmax(x, axis):
    return np.exp(exact_log_softmax(x, axis))


SOFTMAX = {
    (name, axis): jit(lambda x, key, f=getattr(sjax, name), axis=axis: f(x, key, axis=axis))
    for name in ("softmax", "log_softmax")
    for axis in (0, 1)
}


@pytest.mark.parametrize("n", NL_PARTIES)
@pytest.mark.parametrize("axis", [0, 1], ids=["axis0-length2", "axis1-length1000"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax(keys, name, axis, n):
    xs = sjax.share(LOGITS, keys(), n_parties=n)
    out = run_deterministic(SOFTMAX[name, axis], (xs,), keys)
    assert out.shape == LOGITS.shape and out.n_parties == n
    x, y = np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(out))
    exact = (exact_softmax if name == "softmax" else exact_log_softmax)(x, axis)
    length = x.shape[axis]
    # Documented: absolute error below 2^-f plus L 2^-30 (log_softmax: "plus L 2^-30" in parentheses). That
    # leaves out the polynomials: exp's (relative EXP2_POLY on every exponential, hence on the sum; stated
    # in exp's module docstring) and the reciprocal's (relative 2^-21, softmax) or the logarithm's
    # (absolute 2^-24, log_softmax), which are added here.
    bound = ULP + length * 2.0**-30 + EXP2_POLY + (2.0**-21 if name == "softmax" else 2.0**-24)
    # The first row (axis 1), or the pairs whose logits both lie in the target (axis 0): the target domain.
    in_target = np.zeros(x.shape, bool)
    if axis == 1:
        in_target[0] = True
    else:
        in_target[:, np.all(np.abs(x) <= 30, axis=0)] = True
    what = f"{name} along an axis of length {length} (n={n})"
    with every_failure():
        for part, k in (("target", in_target), ("documented", ~in_target)):
            check_accuracy(f"{what}, {part}", x[k], y[k], exact[k], bound=bound, relative=False)
        if name == "softmax":
            assert np.all(y >= 0) and np.all(y <= 1 + ULP)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("length", [2, 3, 10, 100, 1000])
def test_softmax_cost_matches_the_docstring(keys, name, length):
    # Docstring: 9 ceil(log2 L) + 44 rounds for softmax (80 for L = 10, 107 for L = 100), and each party
    # sends about 900 (n - 1) bytes per element (949 for L = 10, 872 for L = 100); 9 ceil(log2 L) + 40 for
    # log_softmax (76 for L = 10, 103 for L = 100).
    levels = int(np.ceil(np.log2(length)))
    for n in NL_PARTIES:
        rows = 4
        x = abstract_share((rows, length), n)
        cost = sjax.cost(lambda x, key: getattr(sjax, name)(x, key, axis=-1))(x, keys())
        assert cost.rounds == 9 * levels + (44 if name == "softmax" else 40)
        per_element = cost.bytes_per_party / ((n - 1) * rows * length)
        if name == "softmax" and length in (10, 100):
            assert round(per_element) == {10: 949, 100: 872}[length]


@pytest.mark.parametrize("length", [10, 100])
def test_softmax_cost_examples(keys, length):
    # The docstrings' worked examples, for the rows of length 10 and 100 they name.
    x = abstract_share((1, length), 2)
    assert sjax.cost(sjax.softmax)(x, keys()).rounds == {10: 80, 100: 107}[length]
    assert sjax.cost(sjax.log_softmax)(x, keys()).rounds == {10: 76, 100: 103}[length]


def test_softmax_of_a_0d_share_is_a_value_error(keys):
    x = sjax.share(1.0, keys(), n_parties=2)
    for f in (sjax.softmax, sjax.log_softmax):
        with pytest.raises(ValueError, match="needs an axis"):
            f(x, keys())


# -- layer_norm ------------------------------------------------------------------------------------------

# 20 rows with standard deviations from 1e-1 to 1e2 and means in [-100, 100], then 6 rows at the smallest
# standard deviation with means 0, +-100 and +-1000 (the documented domain allows means up to
# 2^(22 - ceil(log2 L)) = 32768 for L = 100).
LENGTH = 100
STDS = np.concatenate([np.geomspace(0.1, 100.0, 20), np.full(6, 0.1)])
MEANS = np.concatenate([_rng.uniform(-100, 100, 20), [0.0, 0.0, 100.0, -100.0, 1000.0, -1000.0]])
ROWS = STDS.size
ROWS_VALUES = MEANS[:, None] + STDS[:, None] * _rng.standard_normal((ROWS, LENGTH))
EPSILON = 1e-6  # layer_norm's default
LAYER_NORM = {axis: jit(lambda x, key, axis=axis: sjax.layer_norm(x, key, axis=axis)) for axis in (0, -1)}


def exact_layer_norm(x):
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + EPSILON)


@pytest.mark.parametrize("n, axis", [(2, 0), (3, -1)])
def test_layer_norm(keys, n, axis):
    values = ROWS_VALUES.T if axis == 0 else ROWS_VALUES
    xs = sjax.share(values, keys(), n_parties=n)
    out = run_deterministic(LAYER_NORM[axis], (xs,), keys)
    assert out.shape == values.shape
    x, y = np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(out))
    if axis == 0:
        x, y = x.T, y.T
    exact = exact_layer_norm(x)
    with every_failure():
        # The target for standard deviations from 1e-1 to 1e2 (the docstring's "a few 2^-f" is no
        # figure to check).
        for i in range(ROWS):
            what = f"layer_norm, row of mean {MEANS[i]:.3g} and std {STDS[i]:.3g} (n={n}, axis={axis})"
            check_accuracy(what, x[i], y[i], exact[i])


@pytest.mark.parametrize("length", [10, 100])
def test_layer_norm_cost_matches_the_docstring(keys, length):
    # Docstring: 34 rounds (plus 2 for a secret scale); each party sends 162 (n - 1) bytes per element for
    # rows of 10, 67 (n - 1) for rows of 100.
    for n in NL_PARTIES:
        rows = 4
        x = abstract_share((rows, length), n)
        cost = sjax.cost(sjax.layer_norm)(x, keys())
        assert cost.rounds == 34
        assert round(cost.bytes_per_party / ((n - 1) * rows * length)) == {10: 162, 100: 67}[length]
        scale = abstract_share((length,), n)
        with_scale = sjax.cost(lambda x, s, key: sjax.layer_norm(x, key, scale=s, bias=s))(x, scale, keys())
        assert with_scale.rounds == 34 + 2

