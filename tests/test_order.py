"""Tests for the order statistics of :mod:`sjax.primitives.order`.

Functions under test: ``sjax.max``, ``min``, ``argmax``, ``argmin``, ``sort``, ``top_k``, ``max_pool2d``,
``avg_pool2d`` and :func:`sjax.primitives.order.sorting_network`.

* Reductions and sorting are exact, so results are compared bit for bit with numpy / ``jnp.sort`` /
  ``jax.lax.top_k`` on the same ring integers (a result is opened by the test itself: the sum of the
  parties' shares modulo 2^64). Indices are integer-valued shares: ``i * 2**16`` raw.
* Inputs are ring integers ("raw" values, ``x * 2**16``) shared with ``frac_bits=0`` and read at 16
  fractional bits. Domain tested: ``|x| <= 2**46 - 2**-16`` (raw up to ``M = 2**62 - 1``), where every
  difference is inside the comparisons' ``2**(63 - 16)``. Most values are small integers, so that ties are
  frequent along every axis (ties go to the first index, like ``jnp.argmax``); some rows hold the ends of
  the domain and single steps of ``2**-16``.
* Reductions run over axes of length 1, 2, 3, 7 and 8 of one ``[2, 3, 7, 8]`` array, on several axes;
  sort runs on lengths 1..9 and 16, ascending (one length along a leading axis) and for two lengths
  descending; top_k checks values and indices (exactly where the values are distinct, and the documented
  guarantee where they tie: Batcher's network is not stable).
* Pooling is compared with ``flax.linen.max_pool`` (exact) and ``flax.linen.avg_pool`` (within the
  documented error of ``sjax.mean``: ``|mean| 2**-17 + 2**-16``) for VALID and SAME padding and strides 1
  and 2, with a non-square window on a non-square image.
* :func:`sorting_network` is checked in plain numpy by the 0-1 principle on all ``2**L`` inputs.

Compilation is most of the run time (a comparison layer costs about a second to compile on a small
machine), so each number of parties (2 and 3) compiles four jitted programs (reductions, sorts, top_k,
pooling), each running all its calls on slices of one sharing, once per session (:func:`results_for`);
the two party counts split the sort lengths and reduction cases between them (see ``SORT_LENGTHS``).
Costs are read off traces of abstract shares.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax
from sjax.primitives.order import sorting_network

F = 16
ONE = 1 << F
M = 2**62 - 1
rng = np.random.default_rng(20261128)

# -- the cases -------------------------------------------------------------------------------------


def _reduction_input():
    """[2, 3, 7, 8] raw values: small integers (ties everywhere), with rows of extremes and single steps."""
    v = rng.integers(-3, 4, (2, 3, 7, 8)) * ONE
    v[0, 0] = rng.integers(-M, M, (7, 8), endpoint=True)  # random over the whole domain
    v[1, 2, 0] = [M, -M, M - 1, M, -M + 1, 0, M, -M]  # the ends, a tie at the maximum
    v[1, 2, 1] = [-M, -M, M, -M, 0, -M, M - 1, M]
    v[1, 2, 2] = [1, 0, -1, 1, 0, 0, -1, 1]  # single steps around zero
    v[1, 2, 3] = [ONE, ONE + 1, ONE - 1, ONE + 1, ONE, ONE, ONE - 1, ONE + 1]
    v[1, 2, 4] = 5 * ONE  # all tied
    v[:, :, 5] = -M  # whole planes of ties at the bottom end, along the other axes
    return v.astype(np.int64)


V = _reduction_input()

# What each number of parties runs. Compiling a comparison layer takes about a second, so the two party
# counts split the sort lengths, the reduction cases and the strided poolings between them (every function
# still runs for both): the protocols differ between party counts only in the openings, which every case
# exercises, while the sorting networks of all lengths are checked exhaustively in numpy below.
SORT_LENGTHS = {2: (1, 3, 5, 7, 9), 3: (2, 4, 6, 8, 16)}
SORT_ALONG_AXIS_0 = 5  # this length is sorted along the leading axis (the data transposed)
DESCENDING_LENGTHS = {2: (3,), 3: (4,)}
TOP_K = {2: ((1, 1), (4, 4)), 3: ((3, 2),)}  # (length, k): a full sort, and k < L
DISTINCT_ROWS = (1, 2, 3)  # rows of SORT_INPUTS without ties
# (op, axis, only the first element along the axis, keepdims or one_hot): lengths 8, 3, 2, 7 and 1.
REDUCTIONS = {
    2: [("max", -1, False, False), ("max", 2, True, True), ("min", 0, False, False),
        ("argmax", 1, False, True), ("argmin", -2, False, True), ("argmin", 1, True, False)],
    3: [("max", 1, False, True), ("min", 2, False, False), ("min", -1, True, True),
        ("argmax", -1, False, False), ("argmax", 0, True, True), ("argmin", 0, False, False)],
}  # fmt: skip
POOLINGS = {2: [("VALID", 1), ("SAME", 2)], 3: [("VALID", 2), ("SAME", 1)]}
ALL_POOLINGS = [("VALID", 1), ("VALID", 2), ("SAME", 1), ("SAME", 2)]


def _sort_input(length):
    """[6, length] raw values: ties, the whole domain, sorted, reversed, all equal, single steps."""
    distinct = rng.choice(np.arange(-1000, 1000), length, replace=False) * ONE + rng.integers(0, ONE, length)
    rows = [
        rng.integers(-2, 3, length) * ONE,
        rng.choice(np.arange(-M, M, M // 1000), length, replace=False) + rng.integers(0, 1000, length),
        np.sort(distinct),
        np.sort(distinct)[::-1] + 1,
        np.full(length, -7 * ONE),
        (np.array([M, -M, 1, -1, 0, M - 1, -M + 1, 1, 2] * 2)[:length]),
    ]
    return np.stack(rows).astype(np.int64)


SORT_INPUTS = {length: _sort_input(length) for lengths in SORT_LENGTHS.values() for length in lengths}

IMAGE = rng.integers(-50 * ONE, 50 * ONE, (2, 5, 6, 2)).astype(np.int64)  # NHWC, negative values included
IMAGE[0, :, :, 0] = -rng.integers(ONE, 50 * ONE, (5, 6))  # one all-negative channel: SAME must not pad 0
WINDOW = (3, 2)


# -- running every call once per number of parties -------------------------------------------------


def _pieces():
    """The plaintext pieces of the one sharing, by name."""
    pieces = {"v": V, "image": IMAGE}
    pieces.update({f"sort{length}": a for length, a in SORT_INPUTS.items()})
    return pieces


PIECES = _pieces()


def _first(ndim, axis):
    """Index of the first element along ``axis``: keeps the axis, with length 1."""
    index = [slice(None)] * ndim
    index[axis] = slice(0, 1)
    return tuple(index)


def _reduction_name(case):
    op, axis, first, option = case
    flag = ("keepdims" if op in ("max", "min") else "one_hot") if option else ""
    return f"{op} axis={axis}{' length 1' if first else ''} {flag}".strip()


def _reduce(op, v, key, axis, option):
    if op in ("max", "min"):
        return getattr(sjax, op)(v, key, axis=axis, keepdims=option)
    return getattr(sjax, op)(v, key, axis=axis, one_hot=option)


# XLA's backend optimisation level 0 (no LLVM optimisation of the generated code): the same HLO, compiled in
# about two thirds of the time. The protocols are integer arithmetic on uint64, so the results are the same.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
GROUPS = ("reductions", "sort", "top_k", "pooling")  # compiled separately: smaller programs compile faster


@functools.partial(jax.jit, static_argnames=("n", "group"), compiler_options=COMPILER_OPTIONS)
def _battery(pieces, key, *, n, group):
    """One group of calls for ``n`` parties on slices of one sharing of every piece: name -> result."""
    keys = iter(jax.random.split(key, 16))
    flat = jnp.concatenate([p.ravel() for p in pieces.values()])
    pool = sjax.share(flat, next(keys), n, frac_bits=0)
    shares, start = {}, 0
    for name, p in pieces.items():
        piece = pool[start : start + p.size].reshape(p.shape)
        shares[name] = sjax.ArithShare(piece.shares, frac_bits=F)
        start += p.size
    v, image = shares["v"], shares["image"]
    out = {}
    if group == "reductions":
        for case in REDUCTIONS[n]:
            op, axis, first, option = case
            x = v[_first(v.ndim, axis)] if first else v
            out[_reduction_name(case)] = _reduce(op, x, next(keys), axis, option)
    if group == "sort":
        for length in SORT_LENGTHS[n]:
            x = shares[f"sort{length}"]
            if length == SORT_ALONG_AXIS_0:
                out[f"sort {length}"] = sjax.sort(x.T, next(keys), axis=0)
            else:
                out[f"sort {length}"] = sjax.sort(x, next(keys))
    if group == "top_k":
        for length in DESCENDING_LENGTHS[n]:
            out[f"sort {length} descending"] = sjax.sort(shares[f"sort{length}"], next(keys), descending=True)
        for length, k in TOP_K[n]:
            out[f"top_k {length} {k}"] = sjax.top_k(shares[f"sort{length}"], k, next(keys))
    if group == "pooling":
        for padding, stride in POOLINGS[n]:
            strides = (stride, stride)
            out[f"max_pool {padding} {stride}"] = sjax.max_pool2d(image, next(keys), WINDOW, strides, padding)
            out[f"avg_pool {padding} {stride}"] = sjax.avg_pool2d(image, next(keys), WINDOW, strides, padding)
    return out


@functools.cache
def results_for(n):
    """(n, name -> share or tuple of shares): every call for ``n`` parties, run once per session."""
    # Runs from whichever test comes first: turn the key-reuse checker on here rather than relying on
    # that test's fixture.
    out = {}
    with jax.debug_key_reuse(True):
        for i, group in enumerate(GROUPS):
            out.update(_battery(PIECES, jax.random.key(100 * n + i), n=n, group=group))
    return n, jax.device_get(out)


def _params(table, fmt):
    """pytest params (n, case) for every case of a per-party-count table, with readable ids."""
    return [pytest.param(n, c, id=f"{n}-parties-{fmt(c)}") for n, cases in table.items() for c in cases]


def opened(share):
    """The exact ring value of a share: the sum of the shares modulo 2^64, as int64."""
    return np.asarray(share.shares).sum(axis=0, dtype=np.uint64).view(np.int64)


def check_exact(n, name, expected_raw, share=None):
    _, out = results_for(n)
    share = out[name] if share is None else share
    expected_raw = np.asarray(expected_raw)
    assert isinstance(share, sjax.ArithShare), name
    assert (share.n_parties, share.frac_bits, share.shape) == (n, F, expected_raw.shape), name
    got = opened(share)
    bad = np.argwhere(got != expected_raw)
    if bad.size:
        first = tuple(bad[0])
        want = expected_raw[first]
        pytest.fail(f"{name}, {n} parties, {len(bad)} wrong; at {first}: {got[first]} != {want}")


def one_hot_raw(indices, length, axis):
    return np.asarray(jax.nn.one_hot(indices, length, axis=axis, dtype=jnp.int64)) << F


# -- max, min, argmax, argmin ----------------------------------------------------------------------


@pytest.mark.parametrize("n, case", _params(REDUCTIONS, _reduction_name))
def test_reduction_matches_numpy(n, case):
    # max/min as numpy; argmax/argmin as jnp.argmax/argmin, which take the first index on ties (the input
    # has ties along every axis); one_hot=True as jax.nn.one_hot along the reduced axis.
    op, axis, first, option = case
    v = V[_first(V.ndim, axis)] if first else V
    if op in ("max", "min"):
        expected = getattr(np, op)(v, axis=axis, keepdims=option)
    else:
        index = np.asarray(getattr(jnp, op)(v, axis=axis))
        expected = one_hot_raw(index, v.shape[axis], axis) if option else index.astype(np.int64) << F
        assert first or np.any((v == getattr(np, op[3:])(v, axis=axis, keepdims=True)).sum(axis=axis) > 1)
    check_exact(n, _reduction_name(case), expected)


def test_every_reduction_length_and_op_is_covered():
    # Guards the split between party counts: each op on both party counts, lengths 1, 2, 3, 7, 8 all run.
    cases = [(n, c) for n, cs in REDUCTIONS.items() for c in cs]
    ops = ("max", "min", "argmax", "argmin")
    assert {(n, c[0]) for n, c in cases} == {(n, op) for n in (2, 3) for op in ops}
    assert {1 if c[2] else V.shape[c[1]] for _, c in cases} == {1, 2, 3, 7, 8}


# -- sort and top_k --------------------------------------------------------------------------------


@pytest.mark.parametrize("n, length", _params(SORT_LENGTHS, lambda length: f"L{length}"))
def test_sort_ascending_matches_jnp_sort(n, length):
    x = SORT_INPUTS[length]
    if length == SORT_ALONG_AXIS_0:
        check_exact(n, f"sort {length}", np.asarray(jnp.sort(x.T, axis=0)))
    else:
        check_exact(n, f"sort {length}", np.asarray(jnp.sort(x, axis=-1)))


def test_sort_lengths_cover_one_to_nine_and_a_power_of_two():
    lengths = sorted(length for lengths in SORT_LENGTHS.values() for length in lengths)
    assert lengths == [*range(1, 10), 16]


@pytest.mark.parametrize("n, length", _params(DESCENDING_LENGTHS, lambda length: f"L{length}"))
def test_sort_descending_matches_reversed_jnp_sort(n, length):
    check_exact(n, f"sort {length} descending", np.asarray(jnp.sort(SORT_INPUTS[length], axis=-1))[:, ::-1])


@pytest.mark.parametrize("n, length_k", _params(TOP_K, lambda c: f"L{c[0]}-k{c[1]}"))
def test_top_k_values_and_indices_match_lax_top_k(n, length_k):
    length, k = length_k
    _, out = results_for(n)
    x = SORT_INPUTS[length]
    values, indices = out[f"top_k {length} {k}"]
    expected_values, expected_indices = jax.lax.top_k(x, k)
    check_exact(n, "top_k values", expected_values, values)
    got = opened(indices)
    assert (indices.n_parties, indices.frac_bits, indices.shape) == (n, F, (x.shape[0], k))
    assert np.all(got % ONE == 0), "indices must be integer-valued"
    got = got >> F
    rows = list(DISTINCT_ROWS)
    np.testing.assert_array_equal(got[rows], np.asarray(expected_indices)[rows])
    # Every row, ties included: distinct valid positions that hold the returned values.
    assert np.all((got >= 0) & (got < length))
    assert all(len(set(row)) == k for row in got.tolist())
    np.testing.assert_array_equal(np.take_along_axis(x, got, axis=-1), np.asarray(expected_values))


# -- pooling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, config", _params(POOLINGS, lambda c: f"{c[0]}-stride{c[1]}"))
def test_max_pool2d_matches_flax(n, config):
    padding, stride = config
    expected = nn.max_pool(jnp.asarray(IMAGE * 2.0**-F), WINDOW, (stride, stride), padding)
    check_exact(n, f"max_pool {padding} {stride}", np.asarray(expected * 2.0**F).astype(np.int64))


@pytest.mark.parametrize("n, config", _params(POOLINGS, lambda c: f"{c[0]}-stride{c[1]}"))
def test_avg_pool2d_matches_flax(n, config):
    padding, stride = config
    _, out = results_for(n)
    share = out[f"avg_pool {padding} {stride}"]
    expected = np.asarray(nn.avg_pool(jnp.asarray(IMAGE * 2.0**-F), WINDOW, (stride, stride), padding))
    assert (share.n_parties, share.frac_bits, share.shape) == (n, F, expected.shape)
    error = np.abs(opened(share) * 2.0**-F - expected)
    bound = np.abs(expected) * 2.0**-17 + 2.0**-16 + 1e-12  # sjax.mean's documented error, float64 slack
    assert np.all(error <= bound), f"max error {error.max():.3g}"


def test_pooling_shapes_follow_flax():
    # VALID 5x6 with (3, 2): 3x5 at stride 1, 2x3 at stride 2; SAME: 5x6 and 3x3.
    shapes = {p: results_for(n)[1][f"max_pool {p[0]} {p[1]}"].shape for n, ps in POOLINGS.items() for p in ps}
    assert shapes == {
        ("VALID", 1): (2, 3, 5, 2), ("VALID", 2): (2, 2, 3, 2),
        ("SAME", 1): (2, 5, 6, 2), ("SAME", 2): (2, 3, 3, 2),
    }  # fmt: skip


def test_pooling_covers_both_paddings_and_strides():
    assert sorted(c for cs in POOLINGS.values() for c in cs) == sorted(ALL_POOLINGS)


# -- the sorting network, in plain numpy -----------------------------------------------------------


def apply_network(layers, a):
    """Runs the compare-exchanges on every row of ``a``: the smaller value to the lower index."""
    a = a.copy()
    for layer in layers:
        low, high = np.array(layer).T
        x, y = a[:, low], a[:, high]
        a[:, low], a[:, high] = np.minimum(x, y), np.maximum(x, y)
    return a


@pytest.mark.parametrize("length", [*range(1, 13), 16])
def test_sorting_network_sorts_every_zero_one_input(length):
    layers = sorting_network(length)
    for layer in layers:
        assert layer, "empty layer"
        used = [i for pair in layer for i in pair]
        assert len(used) == len(set(used)), f"layer {layer} is not disjoint"
        assert all(0 <= low < high < length for low, high in layer)
    # 0-1 principle: a comparator network sorts everything iff it sorts all 2^L inputs of zeros and ones.
    inputs = ((np.arange(2**length)[:, None] >> np.arange(length)) & 1).astype(np.int8)
    out = apply_network(layers, inputs)
    assert np.all(np.diff(out, axis=1) >= 0)
    # Depth as documented: k (k + 1) / 2 layers for L <= 2^k, exactly that at powers of two.
    k = int(np.ceil(np.log2(length))) if length > 1 else 0
    assert len(layers) <= k * (k + 1) // 2
    if length == 2**k:
        assert len(layers) == k * (k + 1) // 2


def test_sorting_network_comparator_counts_at_powers_of_two():
    # Batcher's odd-even merge sort: (k^2 - k + 4) 2^(k-2) - 1 comparators for 2^k elements.
    for k, count in [(1, 1), (2, 5), (3, 19), (4, 63)]:
        assert sum(len(layer) for layer in sorting_network(2**k)) == count


# -- cost ------------------------------------------------------------------------------------------


def secret(*shape, n=3):
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, *shape), jnp.uint64), frac_bits=F)


@pytest.mark.parametrize(
    "call, shape, rounds",
    [
        (lambda x, k: sjax.max(x, k), (4, 8), 27),  # 3 levels of (8 + 1)
        (lambda x, k: sjax.min(x, k, axis=0), (8, 7), 27),
        (lambda x, k: sjax.argmax(x, k), (4, 8), 27),
        (lambda x, k: sjax.argmin(x, k, one_hot=True), (4, 8), 27),
        (lambda x, k: sjax.max(x, k), (4, 3), 18),
        (lambda x, k: sjax.max(x, k), (4, 1), 0),
        (lambda x, k: sjax.sort(x, k), (4, 8), 54),  # 6 layers of 9
        (lambda x, k: sjax.sort(x, k, descending=True), (4, 5), 54),  # L <= 8: 6 layers
        (lambda x, k: sjax.top_k(x, 2, k), (4, 16), 90),  # 10 layers of 9
        (lambda x, k: sjax.max_pool2d(x, k, (3, 2), padding="SAME"), (1, 4, 4, 1), 27),  # 6 per window
        (lambda x, k: sjax.avg_pool2d(x, k, (2, 2)), (1, 4, 4, 1), 1),
    ],
    ids=["max8", "min7", "argmax8", "argmin8-one_hot", "max3", "max1", "sort8", "sort5-descending", "top_k16",
         "max_pool", "avg_pool"],
)  # fmt: skip
def test_cost_rounds(keys, call, shape, rounds):
    assert sjax.cost(call)(secret(*shape), keys()).rounds == rounds


# -- bad input -------------------------------------------------------------------------------------


def zeros(*shape, n=2):
    """A sharing of zeros (all shares zero, a valid sharing): errors are raised before values matter."""
    return sjax.ArithShare(jnp.zeros((n, *shape), jnp.uint64))


@pytest.mark.parametrize("op", [sjax.max, sjax.min, sjax.argmax, sjax.argmin, sjax.sort])
def test_reductions_reject_non_shares_and_bad_axes(keys, op):
    name = op.__name__
    with pytest.raises(TypeError, match=f"{name} takes an ArithShare"):
        op(np.ones(3), keys())
    with pytest.raises(ValueError, match="axis 2 is out of bounds for a share of rank 2"):
        op(zeros(3, 4), keys(), axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of bounds"):
        op(zeros(3, 4), keys(), axis=-3)
    with pytest.raises(TypeError, match="axis must be an int"):
        op(zeros(3, 4), keys(), axis=1.0)
    with pytest.raises(ValueError, match=r"shape \(\) has nothing to reduce"):
        op(zeros(), keys())


@pytest.mark.parametrize("k", [0, 4, -1, True, 1.5, None])
def test_top_k_rejects_k_out_of_range(keys, k):
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 3\]"):
        sjax.top_k(zeros(2, 3), k, keys())


def test_top_k_rejects_a_non_share(keys):
    with pytest.raises(TypeError, match="top_k takes an ArithShare"):
        sjax.top_k(np.ones(3), 1, keys())


@pytest.mark.parametrize("pool", [sjax.max_pool2d, sjax.avg_pool2d])
def test_pooling_rejects_bad_input(keys, pool):
    with pytest.raises(ValueError, match=r"NHWC share \(rank 4\), got shape \(4, 4, 1\)"):
        pool(zeros(4, 4, 1), keys(), (2, 2))
    with pytest.raises(TypeError, match="pooling takes an ArithShare"):
        pool(np.ones((1, 4, 4, 1)), keys(), (2, 2))
    with pytest.raises(ValueError, match="padding must be 'SAME', 'VALID'"):
        pool(zeros(1, 4, 4, 1), keys(), (2, 2), padding="same")
    with pytest.raises(ValueError, match="window and strides must be two positive ints"):
        pool(zeros(1, 4, 4, 1), keys(), (0, 2))
    with pytest.raises(ValueError, match="window and strides"):
        pool(zeros(1, 4, 4, 1), keys(), (2, 2), strides=(1, 1, 1))
    with pytest.raises(ValueError, match="does not fit"):
        pool(zeros(1, 4, 4, 1), keys(), (5, 2))
