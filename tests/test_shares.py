"""Tests of sjax.shares: the share types as pytrees, and their local operations, against plaintext JAX/numpy.

Every secret is made with ``sjax.share`` (or ``sjax.share_bits``) and read back with ``sjax.reveal``, through
the helpers ``share``, ``share_bits`` and ``revealed`` below, which keep the number of XLA compilations small.

Tolerances come from fixed point. Encoding rounds to the nearest multiple of ``2**-f``, so each encoded value
is within ``ENC = 2**-(f + 1)`` of the plaintext (and exact on that grid). Local operations are exact in the
ring, so their errors are the encoding errors propagated linearly:

* ``x ± y`` (share or public): ``2 * ENC``; ``-x``: ``ENC``;
* ``x * c`` with integer ``c``: ``|c| * ENC``; ``x @ W`` with integer ``W``: ``(|.| @ |W|)`` of ``ENC``;
* ``x.sum()`` over ``m`` elements: ``m * ENC``;
* shape operations (reshape, transpose, indexing, concatenate, stack, broadcast, pad) move encoded values
  without changing them, so they are compared exactly with the same numpy operation on ``reveal(x)``.
"""

import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

import sjax
from sjax import ArithShare, BinShare

from conftest import PARTIES

F = 16  # the default frac_bits
ENC = 2.0 ** -(F + 1)  # largest encoding error of one value


@pytest.fixture(params=[False, True], ids=["eager", "jit"])
def maybe_jit(request):
    """Runs a function as is, or compiled with jax.jit."""
    return jax.jit if request.param else (lambda f: f)


def run(f, use_jit: bool):
    return jax.jit(f) if use_jit else f


MODES = [(n, use_jit) for use_jit in (False, True) for n in PARTIES]


def spread(argnames: str, cases: list):
    """Parametrizes a test over ``cases`` and over ``n_parties`` and ``use_jit``.

    Each case runs under one combination of party count and eager/jit, taken in turn, and the first case
    fills in the combinations left over when there are fewer than six cases. Every combination is tested,
    without compiling the full product (each case, party count and mode is its own XLA compilation, and
    compiling dominates the run time).
    """
    single = "," not in argnames
    params = []
    for i in range(max(len(cases), len(MODES))):
        case = cases[i] if i < len(cases) else cases[0]
        case = (case,) if single else tuple(case)
        n_parties, use_jit = MODES[i % len(MODES)]
        label = f"{case[0] if single else case}-n{n_parties}-{'jit' if use_jit else 'eager'}"
        params.append(pytest.param(*case, n_parties, use_jit, id=label.replace(" ", "")))
    return pytest.mark.parametrize(f"{argnames},n_parties,use_jit", params)


@pytest.fixture(params=PARTIES, ids=[f"n{n}" for n in PARTIES])
def n(request):
    """Number of parties."""
    return request.param


def values(shape, seed=0, scale=100.0):
    """Random float64 plaintext in [-scale, scale)."""
    return np.random.default_rng(seed).uniform(-scale, scale, size=shape)


# sjax.share and sjax.share_bits expand their masks with threefry, which XLA compiles anew for every shape
# and party count (about a second each on a small CPU). To keep the file fast, every secret goes through one
# buffer of BUFFER elements: the helpers below call the real sjax.share / sjax.share_bits / sjax.reveal on
# that buffer, compiled once per party count and frac_bits (with XLA's backend optimizations off, which
# changes compile time only), and cut the stacked leaf to the wanted shape. Under jit, sjax.share skips its
# range check on concrete values, which this file does not test. The operations under test run as users
# run them.
BUFFER = 64
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


@functools.cache
def _compiled(kind, n_parties, frac_bits=F):
    if kind == "share":
        fn = lambda x, key: sjax.share(x, key, n_parties, frac_bits)  # noqa: E731
    elif kind == "share_bits":
        fn = lambda x, key: sjax.share_bits(x, key, n_parties)  # noqa: E731
    else:
        fn = sjax.reveal
    return jax.jit(fn, compiler_options=_FAST_COMPILE)


def _cut(leaf, shape) -> jax.Array:
    size = int(np.prod(shape, dtype=np.int64))
    return jnp.asarray(np.asarray(leaf)[:, :size].reshape((leaf.shape[0],) + tuple(shape)))


def share(x, key, n_parties, frac_bits=F) -> ArithShare:
    """``sjax.share(x, key, n_parties, frac_bits)``, for any ``x`` of at most BUFFER elements."""
    x = np.asarray(x, dtype=np.float64)
    assert x.size <= BUFFER
    flat = np.zeros(BUFFER)
    flat[: x.size] = x.ravel()
    s = _compiled("share", n_parties, frac_bits)(flat, key)
    return ArithShare(_cut(s.shares, x.shape), frac_bits=frac_bits)


def share_bits(x, key, n_parties) -> BinShare:
    """``sjax.share_bits(x, key, n_parties)`` for an integer ``x`` of at most BUFFER elements."""
    x = np.asarray(x)
    words = x.astype(np.int64).view(np.uint64) if x.dtype != np.uint64 else x
    assert words.size <= BUFFER
    flat = np.zeros(BUFFER, dtype=np.uint64)
    flat[: words.size] = words.ravel()
    return BinShare(_cut(_compiled("share_bits", n_parties)(flat, key).shares, words.shape))


def revealed(s) -> np.ndarray:
    """``sjax.reveal(s)`` as a numpy array (through a padded buffer, see ``share``)."""
    leaf = np.asarray(s.shares).reshape(s.n_parties, -1)
    padded = np.zeros((s.n_parties, -(-max(s.size, 1) // BUFFER) * BUFFER), dtype=np.uint64)
    padded[:, : s.size] = leaf
    if isinstance(s, ArithShare):
        buffer, frac_bits = ArithShare(jnp.asarray(padded), frac_bits=s.frac_bits), s.frac_bits
    else:
        buffer, frac_bits = BinShare(jnp.asarray(padded)), None
    opened = np.asarray(_compiled("reveal", s.n_parties, frac_bits)(buffer))
    return opened[: s.size].reshape(s.shape)


def assert_close(got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    err = np.abs(got - want)
    assert np.all(err <= tol), f"max error {err.max()} > tolerance {np.max(tol)}"


# -- pytree ------------------------------------------------------------------------------------------------


def test_arith_share_is_a_pytree_with_one_uint64_leaf(keys, n):
    x = _compiled("share", n)(values((BUFFER,)), keys())  # sjax.share's own output
    assert isinstance(x, ArithShare)
    leaves = jax.tree.leaves(x)
    assert len(leaves) == 1
    assert leaves[0].dtype == jnp.uint64 and leaves[0].shape == (n, BUFFER)
    assert leaves[0] is x.shares
    row = x[1:3]
    (leaf,) = jax.tree.leaves(row)
    assert leaf.shape == (n, 2)


def test_bin_share_is_a_pytree_with_one_uint64_leaf(keys, n):
    b = _compiled("share_bits", n)(np.arange(BUFFER), keys())  # sjax.share_bits's own output
    assert isinstance(b, BinShare)
    (leaf,) = jax.tree.leaves(b)
    assert leaf.dtype == jnp.uint64 and leaf.shape == (n, BUFFER)
    assert leaf is b.shares


def test_frac_bits_is_static_metadata(keys):
    x16 = share(1.0, keys(), 2, frac_bits=16)
    x8 = share(1.0, keys(), 2, frac_bits=8)
    assert jax.tree.structure(x16) != jax.tree.structure(x8)
    assert all(leaf.dtype == jnp.uint64 for leaf in jax.tree.leaves(x8))
    leaves, treedef = jax.tree.flatten(x8)
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert isinstance(rebuilt, ArithShare) and rebuilt.frac_bits == 8
    assert float(revealed(rebuilt)) == 1.0


def test_pytree_structure_does_not_depend_on_values(keys):
    a = share(np.zeros(3), keys(), 3)
    b = share(np.ones(3) * 5, keys(), 3)
    assert jax.tree.structure(a) == jax.tree.structure(b)


def test_shares_pass_through_jit_as_input_and_output(keys, n):
    x = share(values((3,)), keys(), n)
    b = share_bits(np.array([5, -1, 7]), keys(), n)
    y, c = jax.jit(lambda s, t: (s + 1.0, t ^ 3))(x, b)
    assert isinstance(y, ArithShare) and y.frac_bits == F and y.n_parties == n
    assert isinstance(c, BinShare) and c.n_parties == n
    assert_close(revealed(y), revealed(x) + 1.0, 0)
    np.testing.assert_array_equal(revealed(c), revealed(b) ^ np.uint64(3))


def test_jit_sees_frac_bits_as_a_static_value(keys):
    # One jitted function, two traces: 2 ** frac_bits is baked into the encoding of the constant.
    add_half = jax.jit(lambda s: s + 0.5)
    for frac_bits in (8, 16):
        x = share(2.0, keys(), 2, frac_bits=frac_bits)
        y = add_half(x)
        assert y.frac_bits == frac_bits
        assert float(revealed(y)) == 2.5


def test_shares_as_lax_scan_carry(keys, n):
    x = share(values((2, 2)), keys(), n)
    b = share_bits(np.array([1, 2]), keys(), n)

    def step(carry, i):
        s, t = carry
        return (s + i, t ^ (jnp.int64(1) << i)), None

    (y, c), _ = lax.scan(step, (x, b), jnp.arange(4))
    assert y.n_parties == n and y.shape == (2, 2) and c.shape == (2,)
    assert isinstance(y, ArithShare) and isinstance(c, BinShare)
    assert_close(revealed(y), revealed(x) + 6, 0)
    np.testing.assert_array_equal(revealed(c), revealed(b) ^ np.uint64(0b1111))


def test_tree_map_applies_to_every_party_share(keys, n):
    x = share(values((3,)), keys(), n)
    y = share(values((3,), seed=1), keys(), n)
    # Multiplying every share by 3 multiplies the secret by 3; adding shares adds secrets.
    tripled = jax.tree.map(lambda a: a * jnp.uint64(3), x)
    summed = jax.tree.map(lambda a, b: a + b, x, y)
    assert isinstance(tripled, ArithShare) and tripled.frac_bits == x.frac_bits
    assert_close(revealed(tripled), 3 * revealed(x), 0)
    assert_close(revealed(summed), revealed(x) + revealed(y), 0)


def test_shares_inside_containers_flatten(keys):
    x = share(np.ones(2), keys(), 3)
    b = share_bits(np.ones(2, dtype=np.int64), keys(), 3)
    leaves = jax.tree.leaves({"a": x, "b": [b, 1.0]})
    assert len(leaves) == 3
    assert leaves[0].shape == (3, 2) and leaves[1].shape == (3, 2)


# -- properties --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 1, 3)])
def test_properties(keys, n, shape):
    x = share(values(shape), keys(), n)
    b = share_bits(np.zeros(shape, dtype=np.int64), keys(), n)
    for s in (x, b):
        assert s.shape == shape
        assert s.ndim == len(shape)
        assert s.n_parties == n
        assert s.size == int(np.prod(shape))
    assert x.frac_bits == F
    assert share(values(shape), keys(), 2, frac_bits=8).frac_bits == 8


def test_len_and_iteration(keys, n):
    x = share(values((3, 2)), keys(), n)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3
    expected = revealed(x)
    for i, row in enumerate(rows):
        assert isinstance(row, ArithShare) and row.shape == (2,) and row.n_parties == n
        np.testing.assert_array_equal(revealed(row), expected[i])
    b = share_bits(np.array([4, 5]), keys(), n)
    assert len(b) == 2
    assert [int(revealed(w)) for w in b] == [4, 5]


def test_len_and_iteration_of_0d_share_raise(keys):
    x = share(1.0, keys(), 2)
    with pytest.raises(TypeError, match="0-d"):
        len(x)
    with pytest.raises(TypeError, match="0-d"):
        iter(x)


def test_repr_shows_metadata_and_no_share_values(keys, n):
    x = share(np.array([123.0, -4.5]), keys(), n)
    b = share_bits(np.array([77, 99]), keys(), n)
    for s, name in ((x, "ArithShare"), (b, "BinShare")):
        text = repr(s)
        assert text.startswith(name) and "(2,)" in text and f"n_parties={n}" in text
        for word in np.asarray(s.shares).ravel():
            assert str(int(word)) not in text
    assert f"frac_bits={F}" in repr(x)
    assert "frac_bits=8" in repr(share(np.zeros(2), keys(), 2, frac_bits=8))
    assert "123" not in repr(x) and "77" not in repr(b)


# -- construction ------------------------------------------------------------------------------------------


def test_construct_from_stacked_words():
    words = jnp.array([[5, 0], [2**64 - 1, 3]], dtype=jnp.uint64)
    x = ArithShare(words, frac_bits=0)
    np.testing.assert_array_equal(revealed(x), [4.0, 3.0])  # 5 + (2^64 - 1) wraps to 4
    b = BinShare(words)
    np.testing.assert_array_equal(revealed(b), np.array([5 ^ (2**64 - 1), 3], dtype=np.uint64))


def test_default_frac_bits():
    assert ArithShare(jnp.zeros((2, 3), jnp.uint64)).frac_bits == 16


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.int64, jnp.uint32])
def test_construct_from_non_ring_array_raises(dtype):
    with pytest.raises(TypeError, match="uint64"):
        ArithShare(jnp.zeros((2, 3), dtype=dtype))
    with pytest.raises(TypeError, match="uint64"):
        BinShare(jnp.zeros((2, 3), dtype=dtype))


def test_construct_with_bad_frac_bits_raises():
    with pytest.raises(ValueError, match="frac_bits"):
        ArithShare(jnp.zeros((2,), jnp.uint64), frac_bits=31)
    with pytest.raises(TypeError, match="frac_bits"):
        ArithShare(jnp.zeros((2,), jnp.uint64), frac_bits=1.5)


# -- addition and subtraction ------------------------------------------------------------------------------

BROADCAST_PAIRS = [
    ((4, 3), (3,)),
    ((3,), (3,)),
    ((3,), (4, 3)),
    ((4, 1), (1, 3)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((2, 1, 3), (4, 1)),
]


@spread("shape_x,shape_y", BROADCAST_PAIRS)
def test_share_plus_minus_share(keys, shape_x, shape_y, n_parties, use_jit):
    a, b = values(shape_x, 1), values(shape_y, 2)
    x, y = share(a, keys(), n_parties), share(b, keys(), n_parties)
    total, diff = run(lambda s, t: (s + t, s - t), use_jit)(x, y)
    assert total.shape == np.broadcast_shapes(shape_x, shape_y) and total.n_parties == n_parties
    assert_close(revealed(total), a + b, 2 * ENC)
    assert_close(revealed(diff), a - b, 2 * ENC)


@spread("shape_x,shape_p", BROADCAST_PAIRS)
def test_share_plus_minus_public_array_both_sides(keys, shape_x, shape_p, n_parties, use_jit):
    a, p = values(shape_x, 3), values(shape_p, 4)
    x = share(a, keys(), n_parties)
    results = run(lambda s, q: (s + q, q + s, s - q, q - s), use_jit)(x, jnp.asarray(p))
    wants = (a + p, p + a, a - p, p - a)
    for got, want in zip(results, wants):
        assert isinstance(got, ArithShare) and got.n_parties == n_parties
        assert_close(revealed(got), want, 2 * ENC)


@pytest.mark.parametrize(
    "public",
    [2, -3, 0.25, -1.5, True, np.float32(2.5), np.int32(-7), np.array([1, 2, 3]), jnp.array([0.5, -0.5, 1.0]),
     np.array([True, False, True]), [1.0, 2.0, 3.0]],
    ids=lambda p: f"{type(p).__name__}",
)
def test_share_plus_minus_public_kinds(keys, public):
    a = values((3,), 5)
    x = share(a, keys(), 3)
    p = np.asarray(public, dtype=np.float64)
    assert_close(revealed(x + public), a + p, 2 * ENC)
    assert_close(revealed(public + x), a + p, 2 * ENC)
    assert_close(revealed(x - public), a - p, 2 * ENC)
    assert_close(revealed(public - x), p - a, 2 * ENC)


def test_public_constant_is_added_once_not_once_per_party(keys, n):
    # Only party 0 adds a public constant; were every party to add it, the result would be off by (n-1) * c.
    x = share(np.zeros(4), keys(), n)
    np.testing.assert_array_equal(revealed(x + 1.0), np.ones(4))
    np.testing.assert_array_equal(revealed(10 - x), np.full(4, 10.0))


def test_add_is_exact_on_the_grid(keys, n):
    a = np.array([0.5, -1.25, 3.0])
    b = np.array([2**-16, -(2**-15), 1024.0])
    x, y = share(a, keys(), n), share(b, keys(), n)
    np.testing.assert_array_equal(revealed(x + y), a + b)
    np.testing.assert_array_equal(revealed(x - y), a - b)
    np.testing.assert_array_equal(revealed(x + b), a + b)


def test_unary_minus_and_plus(keys, n, maybe_jit):
    a = values((2, 3), 6)
    x = share(a, keys(), n)
    neg, pos, twice = maybe_jit(lambda s: (-s, +s, -(-s)))(x)
    assert_close(revealed(neg), -a, ENC)
    assert_close(revealed(pos), a, ENC)
    assert_close(revealed(twice), a, ENC)


def test_add_with_other_frac_bits(keys):
    a, b = values((3,), 7), values((3,), 8)
    x, y = share(a, keys(), 2, frac_bits=8), share(b, keys(), 2, frac_bits=8)
    tol = 2 * 2.0**-9  # encoding error with 8 fractional bits, twice
    assert (x + y).frac_bits == 8
    assert_close(revealed(x + y), a + b, tol)
    assert_close(revealed(x - 0.3), a - 0.3, tol)


# -- multiplication by public integers ---------------------------------------------------------------------


@spread(
    "shape_x,shape_c",
    [((4, 3), (3,)), ((3,), (3,)), ((3,), ()), ((), (3,)), ((3,), (4, 3)), ((4, 1), (1, 3)),
     ((2, 1, 3), (4, 3))],
)
def test_times_public_integer_array_both_sides(keys, shape_x, shape_c, n_parties, use_jit):
    a = values(shape_x, 9)
    c = np.random.default_rng(10).integers(-50, 50, size=shape_c)
    x = share(a, keys(), n_parties)
    left, right = run(lambda s, k: (s * k, k * s), use_jit)(x, jnp.asarray(c))
    for got in (left, right):
        assert got.shape == np.broadcast_shapes(shape_x, shape_c) and got.frac_bits == F
        assert_close(revealed(got), a * c, np.abs(c) * ENC)


@pytest.mark.parametrize(
    "public",
    [3, -2, 0, True, False, np.int8(-4), np.uint8(7), np.array([True, False, True]),
     np.array([1, -1, 2], np.int32)],
    ids=lambda p: f"{type(p).__name__}-{np.asarray(p).ravel()[:1]}",
)
def test_times_public_integer_kinds(keys, public):
    a = values((3,), 11)
    x = share(a, keys(), 3)
    c = np.asarray(public).astype(np.int64)
    tol = np.abs(c) * ENC
    assert_close(revealed(x * public), a * c, tol)
    assert_close(revealed(public * x), a * c, tol)


def test_times_integer_numpy_array_on_the_left(keys, n):
    # numpy must defer to the share (not iterate over it) when the array is on the left.
    a = values((2, 3), 12)
    c = np.array([[1, 2, 3], [-1, 0, 4]])
    got = c * share(a, keys(), n)
    assert isinstance(got, ArithShare)
    assert_close(revealed(got), a * c, np.abs(c) * ENC)


def test_times_negative_integer_is_exact_on_the_grid(keys, n):
    a = np.array([1.5, -2.25, 0.0])
    x = share(a, keys(), n)
    np.testing.assert_array_equal(revealed(x * -3), a * -3)
    np.testing.assert_array_equal(revealed(np.array([2, 0, -1]) * x), a * [2, 0, -1])


# -- matmul with public integer matrices -------------------------------------------------------------------


MATMUL_SHAPES = [
    ((3, 4), (4, 2)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((1, 3, 4), (2, 4, 2)),
]


@spread("shape_x,shape_w", MATMUL_SHAPES)
def test_share_matmul_public_integer(keys, shape_x, shape_w, n_parties, use_jit):
    a = values(shape_x, 13)
    w = np.random.default_rng(14).integers(-9, 10, size=shape_w)
    x = share(a, keys(), n_parties)
    got = run(lambda s, m: s @ m, use_jit)(x, jnp.asarray(w))
    assert isinstance(got, ArithShare) and got.n_parties == n_parties
    tol = np.matmul(np.ones(shape_x), np.abs(w)) * ENC
    assert_close(revealed(got), a @ w, tol)


@spread("shape_w,shape_x", MATMUL_SHAPES)
def test_public_integer_matmul_share(keys, shape_w, shape_x, n_parties, use_jit):
    w = np.random.default_rng(15).integers(-9, 10, size=shape_w)
    a = values(shape_x, 16)
    x = share(a, keys(), n_parties)
    got = run(lambda m, s: m @ s, use_jit)(jnp.asarray(w), x)
    assert isinstance(got, ArithShare) and got.n_parties == n_parties
    tol = np.matmul(np.abs(w), np.ones(shape_x)) * ENC
    assert_close(revealed(got), w @ a, tol)


def test_numpy_and_bool_matrices_in_matmul(keys, n):
    a = values((3,), 17)
    x = share(a, keys(), n)
    w = np.array([[1, 0, 2], [0, -1, 1]])
    got = w @ x  # numpy on the left defers to the share
    assert isinstance(got, ArithShare)
    assert_close(revealed(got), w @ a, np.abs(w) @ np.ones(3) * ENC)
    mask = np.array([[True, False], [True, True], [False, True]])
    assert_close(revealed(x @ mask), a @ mask.astype(np.int64), 2 * ENC)


def test_matmul_shape_mismatch_raises(keys):
    x = share(np.ones((3, 4)), keys(), 2)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 2\)"):
        x @ np.ones((3, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 4\)"):
        np.ones((2, 4), dtype=np.int64) @ x


# -- sum and mean ------------------------------------------------------------------------------------------


@spread(
    "axis,keepdims",
    [(None, False), (0, False), (1, True), (-1, False), (2, True), ((0, 2), False), ((-1, 0), True),
     ((0, 1, 2), False), ((), False), (None, True), (-2, False)],
)
def test_sum(keys, axis, keepdims, n_parties, use_jit):
    a = values((2, 3, 4), 19)
    x = share(a, keys(), n_parties)
    got = run(lambda s: s.sum(axis=axis, keepdims=keepdims), use_jit)(x)
    want = np.sum(a, axis=axis, keepdims=keepdims)
    count = a.size // max(np.size(want), 1)
    assert isinstance(got, ArithShare) and got.shape == np.shape(want)
    assert_close(revealed(got), want, count * ENC)


def test_sum_of_0d_share_and_positional_axis(keys):
    assert float(revealed(share(2.5, keys(), 3).sum())) == 2.5
    a = values((3, 2), 20)
    assert_close(revealed(share(a, keys(), 2).sum(0)), a.sum(0), 3 * ENC)


def test_sum_bad_axis_raises(keys):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(ValueError, match="out of bounds"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="out of bounds"):
        x.sum(axis=(0, -3))


def _check_mean(x, a, got, axis, keepdims):
    want = np.asarray(jnp.mean(jnp.asarray(a), axis=axis, keepdims=keepdims))
    assert isinstance(got, ArithShare) and got.frac_bits == x.frac_bits and got.shape == want.shape
    # Error of sjax.mean: |mean| * 2**-(f+1) (rounding of 1/count) + 2**-f (stochastic truncation), plus the
    # encoding error of the inputs, which averages to at most 2**-(f+1).
    f = x.frac_bits
    tol = np.abs(want) * 2.0 ** -(f + 1) + 2.0**-f + 2.0 ** -(f + 1)
    assert_close(revealed(got), want, tol)


# sjax.mean draws truncation triples, whose threefry XLA compiles for every output shape and party count (a
# second or two each): the cases share few output shapes. Eager calls with the same output shape and party
# count reuse the compiled truncation.
@pytest.mark.parametrize(
    ("shape", "axis", "keepdims", "n_parties", "use_jit"),
    [
        ((4, 3), 0, False, 2, True),
        ((4, 3), 0, False, 3, False),
        ((2, 3, 2), (0, 2), False, 3, False),
        ((3, 5), -1, False, 3, False),
        ((3, 4), None, False, 5, True),
    ],
    ids=str,
)
def test_mean_with_key(keys, shape, axis, keepdims, n_parties, use_jit):
    a = values(shape, 21, scale=1000.0)
    x = share(a, keys(), n_parties)
    got = run(lambda s, k: s.mean(axis, keepdims=keepdims, key=k), use_jit)(x, keys())
    _check_mean(x, a, got, axis, keepdims)


def test_mean_over_an_axis_of_size_one_is_the_value(keys, n):
    a = values((3, 1), 22)
    x = share(a, keys(), n)
    assert_close(revealed(x.mean(axis=1, key=keys())), a.mean(axis=1), ENC)


def test_mean_without_key_raises(keys):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(TypeError, match="key"):
        x.mean()
    with pytest.raises(TypeError, match="key"):
        x.mean(axis=0)


# -- reshape, transpose ------------------------------------------------------------------------------------


@spread(
    "args",
    [(4, -1), ((6, 4),), ((-1,),), (-1,), ((2, 3, 4),), (2, 3, 4), ([3, 8],), ((1, 24, 1),), (np.int64(24),)],
)
def test_reshape(keys, args, n_parties, use_jit):
    x = share(values((2, 3, 4), 23), keys(), n_parties)
    got = run(lambda s: s.reshape(*args), use_jit)(x)
    want = np.reshape(revealed(x), args[0] if len(args) == 1 else args)
    assert got.shape == want.shape and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


def test_reshape_0d_and_back(keys):
    x = share(3.5, keys(), 2)
    y = x.reshape(1, 1)
    assert y.shape == (1, 1)
    assert y.reshape(()).shape == ()
    assert float(revealed(y.reshape(()))) == 3.5


@pytest.mark.parametrize("shape", [(5, 5), (7,), (-1, 5), (-1, -1), (2, 3, 5)])
def test_bad_reshape_raises(keys, shape):
    x = share(np.ones((2, 3, 4)), keys(), 2)
    with pytest.raises(ValueError, match=r"cannot reshape a share of shape \(2, 3, 4\)"):
        x.reshape(shape)


@spread("axes", [(2, 0, 1), None, (0, 1, 2), (1, 0, 2), (-1, 0, -2), [2, 1, 0]])
def test_transpose(keys, axes, n_parties, use_jit):
    x = share(values((2, 3, 4), 24), keys(), n_parties)
    got = run(lambda s: s.transpose(axes), use_jit)(x)
    want = np.transpose(revealed(x), axes)
    assert got.shape == want.shape and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


def test_transpose_default_and_T(keys, n):
    x = share(values((2, 3, 4), 25), keys(), n)
    plain = revealed(x)
    np.testing.assert_array_equal(revealed(x.transpose()), plain.T)
    np.testing.assert_array_equal(revealed(x.T), plain.T)
    assert x.T.shape == (4, 3, 2)
    v = share(values((3,), 26), keys(), n)
    np.testing.assert_array_equal(revealed(v.T), revealed(v))


@pytest.mark.parametrize("axes", [(0, 1), (0, 0, 1), (0, 1, 1), (2, -1, 0)])
def test_transpose_axes_not_a_permutation_raise(keys, axes):
    x = share(np.ones((2, 3, 4)), keys(), 2)
    with pytest.raises(ValueError, match="permutation"):
        x.transpose(axes)


def test_transpose_out_of_bounds_axis_raises(keys):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(ValueError, match="out of bounds"):
        x.transpose((0, 2))
    with pytest.raises(ValueError, match="out of bounds"):
        x.transpose((0, 1, 2))


# -- indexing ----------------------------------------------------------------------------------------------


INDICES = [
    0,
    -1,
    (1, 2),
    slice(1, None),
    slice(None, None, -1),
    (slice(None), slice(0, 3, 2)),
    (Ellipsis, 1),
    None,
    (None, 0),
    np.array([2, 0, 0]),
    jnp.array([-1, 1]),
    (np.array([0, 1]), np.array([1, 2])),
    (1, np.array([0, 2])),
    (slice(None), np.array([[0, 1], [2, 2]])),
]


@pytest.mark.parametrize(
    ("index", "n_parties"), [(index, PARTIES[i % len(PARTIES)]) for i, index in enumerate(INDICES)], ids=repr
)
def test_getitem(keys, index, n_parties):
    x = share(values((3, 3, 4), 27), keys(), n_parties)
    got = x[index]
    want = revealed(x)[np.asarray(index) if isinstance(index, jax.Array) else index]
    assert isinstance(got, ArithShare) and got.n_parties == n_parties and got.shape == want.shape
    np.testing.assert_array_equal(revealed(got), want)


@pytest.mark.parametrize(
    "index",
    [(np.array([0, 1]), slice(None), np.array([1, 2])), (0, slice(None), np.array([1, 3])),
     (np.array([0, 2]), slice(None), 1)],
    ids=repr,
)
def test_getitem_with_integer_arrays_separated_by_a_slice(keys, index):
    # numpy moves the dimensions of advanced indices separated by a slice to the front; the party axis must
    # still come first and the secret must have numpy's shape.
    x = share(values((3, 3, 4), 28), keys(), 3)
    got = x[index]
    want = revealed(x)[index]
    assert got.n_parties == 3 and got.shape == want.shape
    np.testing.assert_array_equal(revealed(got), want)


def test_getitem_under_jit_with_traced_index(keys, n):
    x = share(values((5, 2), 29), keys(), n)
    idx = jnp.array([4, 0, 2])
    rows, row = jax.jit(lambda s, i: (s[i], s[i[0], ::-1]))(x, idx)
    plain = revealed(x)
    np.testing.assert_array_equal(revealed(rows), plain[[4, 0, 2]])
    np.testing.assert_array_equal(revealed(row), plain[4, ::-1])


def test_getitem_bin_share(keys):
    n = 3
    words = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    b = share_bits(words, keys(), n)
    assert isinstance(b[1], BinShare)
    np.testing.assert_array_equal(revealed(b[1, ::-1]), np.array([6, 5, 4], dtype=np.uint64))
    np.testing.assert_array_equal(revealed(b[:, np.array([2])]), words[:, [2]].astype(np.uint64))


def test_secret_index_raises(keys):
    x = share(np.ones(4), keys(), 2)
    with pytest.raises(TypeError, match="secret index"):
        x[share(1.0, keys(), 2)]
    with pytest.raises(TypeError, match="secret index"):
        x[0, share_bits(1, keys(), 2)]


# -- concatenate, stack, broadcast_to, pad -----------------------------------------------------------------


@spread(
    "axis,shapes",
    [(0, [(2, 3), (1, 3), (4, 3)]), (1, [(2, 3), (2, 1)]), (-1, [(2, 2), (2, 3), (2, 1)]),
     (-2, [(1, 3), (2, 3)])],
)
def test_concatenate(keys, axis, shapes, n_parties, use_jit):
    parts = [share(values(s, i), keys(), n_parties) for i, s in enumerate(shapes)]
    got = run(lambda ps: sjax.concatenate(ps, axis=axis), use_jit)(parts)
    want = np.concatenate([revealed(p) for p in parts], axis=axis)
    assert isinstance(got, ArithShare) and got.shape == want.shape and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


def test_concatenate_default_axis_and_bin_shares(keys, n):
    parts = [share_bits(np.array([i, -i]), keys(), n) for i in range(3)]
    got = sjax.concatenate(parts)
    assert isinstance(got, BinShare)
    np.testing.assert_array_equal(revealed(got), np.array([0, 0, 1, -1, 2, -2]).astype(np.uint64))
    np.testing.assert_array_equal(revealed(sjax.concatenate(parts[:1])), revealed(parts[0]))


@spread("axis", [1, 0, 2, -1, -3])
def test_stack(keys, axis, n_parties, use_jit):
    parts = [share(values((2, 3), i), keys(), n_parties) for i in range(4)]
    got = run(lambda ps: sjax.stack(ps, axis=axis), use_jit)(parts)
    want = np.stack([revealed(p) for p in parts], axis=axis)
    assert isinstance(got, ArithShare) and got.shape == want.shape and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


def test_stack_0d_and_bin_shares(keys, n):
    scalars = [share(float(i), keys(), n) for i in range(3)]
    np.testing.assert_array_equal(revealed(sjax.stack(scalars)), [0.0, 1.0, 2.0])
    bits = [share_bits(np.array([i]), keys(), n) for i in range(2)]
    got = sjax.stack(bits, axis=1)
    assert isinstance(got, BinShare) and got.shape == (1, 2)
    np.testing.assert_array_equal(revealed(got), np.array([[0, 1]], dtype=np.uint64))


@spread("shape,target", [((1, 3), (2, 4, 3)), ((3,), (4, 3)), ((), (2, 2)), ((2, 1), (2, 5)), ((2,), (2,))])
def test_broadcast_to(keys, shape, target, n_parties, use_jit):
    x = share(values(shape, 30), keys(), n_parties)
    got = run(lambda s: s.broadcast_to(target), use_jit)(x)
    want = np.broadcast_to(revealed(x), target)
    assert got.shape == target and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


@pytest.mark.parametrize(
    ("shape", "target"), [((3,), (4,)), ((2, 3), (3,)), ((2, 3), (3, 3)), ((2,), (2, 3))]
)
def test_broadcast_to_bad_shape_raises(keys, shape, target):
    x = share(np.ones(shape), keys(), 2)
    with pytest.raises(ValueError, match="broadcast"):
        x.broadcast_to(target)


@spread("width", [((1, 0), (0, 2)), 0, 1, 2, (1, 2), ((0, 0), (3, 1)), [[1, 1], [2, 0]]])
def test_pad(keys, width, n_parties, use_jit):
    x = share(values((2, 3), 31), keys(), n_parties)
    got = run(lambda s: s.pad(width), use_jit)(x)
    want = np.pad(revealed(x), width)
    assert got.shape == want.shape and got.n_parties == n_parties
    np.testing.assert_array_equal(revealed(got), want)


def test_pad_bin_share(keys):
    b = share_bits(np.array([7, 9]), keys(), 3)
    np.testing.assert_array_equal(revealed(b.pad((1, 2))), np.array([0, 7, 9, 0, 0], dtype=np.uint64))


@pytest.mark.parametrize("width", [-1, (1, -1), ((1, 2), (0, -3))], ids=str)
def test_pad_negative_width_raises(keys, width):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(ValueError, match="non-negative"):
        x.pad(width)


@pytest.mark.parametrize("width", [(1, 2, 3), ((1, 2), (0, 1), (2, 2)), ((1, 2, 3), (0, 0))], ids=str)
def test_pad_widths_of_the_wrong_shape_raise(keys, width):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(ValueError, match="pad"):
        x.pad(width)


def test_pad_fractional_width_raises(keys):
    # jnp.pad rejects a non-integer width; a share must not silently round it down.
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(TypeError, match="pad"):
        x.pad(1.5)


# -- errors ------------------------------------------------------------------------------------------------


def test_share_times_share_needs_sjax_mul(keys):
    x, y = share(np.ones(3), keys(), 2), share(np.ones(3), keys(), 2)
    with pytest.raises(TypeError, match=r"sjax\.mul\(x, y, key\)"):
        x * y


@pytest.mark.parametrize("public", [0.5, 2.0, np.array([1.0, 2.0, 3.0]), jnp.float32(3.0)], ids=repr)
def test_share_times_float_needs_sjax_mul(keys, public):
    x = share(np.ones(3), keys(), 2)
    with pytest.raises(TypeError, match=r"sjax\.mul"):
        x * public
    with pytest.raises(TypeError, match=r"sjax\.mul"):
        public * x


@pytest.mark.parametrize("divisor", ["share", 2, 2.0, np.array([1.0, 2.0, 3.0])], ids=repr)
def test_division_raises(keys, divisor):
    x = share(np.ones(3), keys(), 2)
    if isinstance(divisor, str):
        divisor = share(np.ones(3), keys(), 2)
    with pytest.raises(TypeError, match="sjax"):
        x / divisor
    with pytest.raises(TypeError, match=r"sjax\.div"):
        divisor / x


def test_share_matmul_share_needs_sjax_matmul(keys):
    x, y = share(np.ones((2, 3)), keys(), 2), share(np.ones((3, 2)), keys(), 2)
    with pytest.raises(TypeError, match=r"sjax\.matmul"):
        x @ y


def test_share_matmul_float_matrix_raises(keys):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(TypeError, match=r"sjax\.matmul"):
        x @ np.ones((3, 2))
    with pytest.raises(TypeError, match=r"sjax\.matmul"):
        np.ones((4, 2)) @ x


COMBINE = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "concatenate": lambda x, y: sjax.concatenate([x, y]),
    "stack": lambda x, y: sjax.stack([x, y]),
}


@pytest.mark.parametrize("op", list(COMBINE))
def test_combining_different_n_parties_raises(keys, op):
    x, y = share(np.ones(3), keys(), 2), share(np.ones(3), keys(), 3)
    with pytest.raises(ValueError, match="2 parties.*3 parties"):
        COMBINE[op](x, y)


def test_xor_different_n_parties_raises(keys):
    a, b = share_bits(np.ones(3, np.int64), keys(), 2), share_bits(np.ones(3, np.int64), keys(), 5)
    with pytest.raises(ValueError, match="2 parties.*5 parties"):
        a ^ b


@pytest.mark.parametrize("op", list(COMBINE))
def test_combining_different_frac_bits_raises(keys, op):
    x, y = share(np.ones(3), keys(), 2, frac_bits=16), share(np.ones(3), keys(), 2, frac_bits=8)
    with pytest.raises(ValueError, match="frac_bits=16 and frac_bits=8"):
        COMBINE[op](x, y)


@pytest.mark.parametrize(("shape_x", "shape_y"), [((3,), (4,)), ((2, 3), (3, 2)), ((2, 3), (2,))])
def test_add_shape_mismatch_names_shapes(keys, shape_x, shape_y):
    x, y = share(np.ones(shape_x), keys(), 2), share(np.ones(shape_y), keys(), 2)
    pattern = rf"{shape_x}.*{shape_y}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        x + y
    with pytest.raises(ValueError, match=pattern):
        x - y
    with pytest.raises(ValueError, match=pattern):
        x + np.ones(shape_y)


def test_arith_share_with_bin_share_raises(keys):
    x = share(np.ones(3), keys(), 2)
    b = share_bits(np.ones(3, np.int64), keys(), 2)
    with pytest.raises(TypeError, match="ArithShare and a BinShare"):
        x + b
    with pytest.raises(TypeError, match="BinShare and a ArithShare"):
        b ^ x
    with pytest.raises(TypeError, match="concatenate"):
        sjax.concatenate([x, b])


def test_bool_of_share_raises(keys):
    with pytest.raises(TypeError, match="secret"):
        bool(share(1.0, keys(), 2))
    with pytest.raises(TypeError, match="secret"):
        if share_bits(1, keys(), 2):
            pass


def test_share_to_numpy_raises(keys):
    with pytest.raises(TypeError, match=r"sjax\.reveal"):
        np.asarray(share(np.ones(3), keys(), 2))
    with pytest.raises(TypeError, match=r"sjax\.reveal"):
        np.asarray(share_bits(np.ones(3, np.int64), keys(), 2))


def test_uint64_public_operand_raises(keys):
    x = share(np.ones(3), keys(), 2)
    with pytest.raises(TypeError, match="uint64"):
        x + np.ones(3, dtype=np.uint64)
    with pytest.raises(TypeError, match="uint64"):
        x * np.ones(3, dtype=np.uint64)


@pytest.mark.parametrize("public", ["abc", None, object(), 1 + 2j], ids=["str", "None", "object", "complex"])
def test_non_numeric_public_operand_raises(keys, public):
    x = share(np.ones(3), keys(), 2)
    with pytest.raises(TypeError, match="ArithShare add"):
        x + public


def test_concatenate_and_stack_errors(keys):
    x = share(np.ones((2, 3)), keys(), 2)
    with pytest.raises(ValueError, match="at least one"):
        sjax.concatenate([])
    with pytest.raises(ValueError, match="at least one"):
        sjax.stack([])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        sjax.concatenate([x, share(np.ones((2, 4)), keys(), 2)], axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        sjax.concatenate([x, share(np.ones(3), keys(), 2)])
    with pytest.raises(ValueError, match="0-d"):
        sjax.concatenate([share(1.0, keys(), 2), share(2.0, keys(), 2)])
    with pytest.raises(ValueError, match="out of bounds"):
        sjax.concatenate([x, x], axis=2)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        sjax.stack([x, share(np.ones((3, 2)), keys(), 2)])
    with pytest.raises(ValueError, match="out of bounds"):
        sjax.stack([x, x], axis=3)
    with pytest.raises(TypeError, match="takes shares"):
        sjax.concatenate([x, np.ones((2, 3))])


# -- BinShare ----------------------------------------------------------------------------------------------


WORDS = np.array([0, 1, -1, 5, -(2**40), 2**62 + 3, -(2**63), 2**63 - 1], dtype=np.int64)


def test_share_bits_round_trip(keys, n):
    # Through sjax.share_bits under jax.jit (see share_bits above), for every party count.
    b = share_bits(WORDS, keys(), n)
    assert isinstance(b, BinShare) and b.n_parties == n and b.shape == WORDS.shape
    got = revealed(b)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, WORDS.view(np.uint64))  # two's complement


@pytest.mark.parametrize(
    "plain",
    [WORDS, np.arange(-4, 4, dtype=np.int8), np.array([True, False] * 4), WORDS.view(np.uint64)],
    ids=lambda p: str(p.dtype),
)
def test_share_bits_eagerly_of_each_dtype(keys, plain):
    b = sjax.share_bits(plain, keys(), 2)
    got = np.asarray(sjax.reveal(b))
    assert got.dtype == np.uint64 and b.shape == plain.shape
    want = plain if plain.dtype == np.uint64 else plain.astype(np.int64).view(np.uint64)
    np.testing.assert_array_equal(got, want)


def test_share_bits_shares_xor_to_the_secret(keys, n):
    b = share_bits(WORDS, keys(), n)
    shares = np.asarray(b.shares)
    np.testing.assert_array_equal(np.bitwise_xor.reduce(shares, axis=0), WORDS.view(np.uint64))
    # The shares are masks, not the secret itself: no single share equals the secret.
    assert not any(np.array_equal(s, WORDS.view(np.uint64)) for s in shares)


def test_share_bits_rejects_floats(keys):
    with pytest.raises(TypeError, match="integer"):
        sjax.share_bits(np.array([1.5]), keys(), 2)


def random_bits(keys, n_parties, seed):
    plain = np.random.default_rng(seed).integers(0, 2**64, size=(2, 3), dtype=np.uint64)
    return plain, share_bits(plain, keys(), n_parties)


def test_xor_share_share(keys, n, maybe_jit):
    pa, a = random_bits(keys, n, 40)
    pb, b = random_bits(keys, n, 41)
    both, row = maybe_jit(lambda s, t: (s ^ t, s ^ t[0]))(a, b)
    assert isinstance(both, BinShare) and row.shape == (2, 3)
    np.testing.assert_array_equal(revealed(both), pa ^ pb)
    np.testing.assert_array_equal(revealed(row), pa ^ pb[0])


@spread(
    "public",
    [np.array([[-7], [2**40]]), 5, -1, np.array([1, 2, 3]), np.array([True, False, True]),
     np.array([2**64 - 1, 0, 2**63], dtype=np.uint64)],
)
def test_bitwise_ops_with_public_words(keys, public, n_parties, use_jit):
    pa, a = random_bits(keys, n_parties, 42)
    array = np.asarray(public)
    words = array if array.dtype == np.uint64 else array.astype(np.int64).view(np.uint64)
    ops = run(lambda s: (s ^ public, public ^ s, s & public, public & s, s | public, public | s), use_jit)(a)
    wants = (pa ^ words, words ^ pa, pa & words, words & pa, pa | words, words | pa)
    for got, want in zip(ops, wants):
        assert isinstance(got, BinShare) and got.n_parties == n_parties
        np.testing.assert_array_equal(revealed(got), want)


def test_bitwise_ops_broadcast_public_of_higher_rank(keys, n):
    plain = np.array([1, 2, 3], dtype=np.uint64)
    a = share_bits(plain, keys(), n)
    public = np.array([[1, 1, 1], [4, 5, 6], [-1, 0, 8], [0, 0, 0]])
    words = public.view(np.uint64)
    for got, want in ((a ^ public, plain ^ words), (a & public, plain & words), (a | public, plain | words)):
        assert got.shape == (4, 3)
        np.testing.assert_array_equal(revealed(got), want)


def test_invert(keys, n, maybe_jit):
    pa, a = random_bits(keys, n, 43)
    once, twice = maybe_jit(lambda s: (~s, ~~s))(a)
    np.testing.assert_array_equal(revealed(once), ~pa)
    np.testing.assert_array_equal(revealed(twice), pa)
    assert int(revealed(~share_bits(0, keys(), n))) == 2**64 - 1


@spread("amount", [np.array([0, 5, 63]), 0, 1, 13, 63, jnp.array([[1, 2, 3], [4, 5, 6]])])
def test_shifts(keys, amount, n_parties, use_jit):
    pa, a = random_bits(keys, n_parties, 44)
    left, right = run(lambda s: (s << amount, s >> amount), use_jit)(a)
    shift = np.asarray(amount).astype(np.uint64)
    np.testing.assert_array_equal(revealed(left), pa << shift)
    np.testing.assert_array_equal(revealed(right), pa >> shift)  # a logical shift of the words


def test_shift_amounts_of_higher_rank_broadcast(keys, n):
    # Like numpy: a (3,) secret shifted by (2, 3) amounts is a (2, 3) secret.
    plain = np.array([1, 2, 3], dtype=np.uint64)
    amount = np.array([[1, 2, 3], [4, 5, 6]])
    got = share_bits(plain, keys(), n) << amount
    assert got.shape == (2, 3) and got.n_parties == n
    np.testing.assert_array_equal(revealed(got), plain << amount.astype(np.uint64))


def test_bin_share_and_or_bin_share_raise(keys):
    _, a = random_bits(keys, 2, 45)
    _, b = random_bits(keys, 2, 46)
    with pytest.raises(TypeError, match="AND triples"):
        a & b
    with pytest.raises(TypeError, match="AND triples"):
        a | b


def test_bin_share_bad_public_operands_raise(keys):
    _, a = random_bits(keys, 2, 47)
    with pytest.raises(TypeError, match="integer"):
        a ^ 1.5
    with pytest.raises(TypeError, match="integer"):
        a & np.array([0.5])
    with pytest.raises(TypeError, match="shift amounts must be integers"):
        a << 1.0
    with pytest.raises(TypeError, match="secret amount"):
        a >> share_bits(1, keys(), 2)


# -- hypothesis: local linear operations over random shapes ------------------------------------------------


@st.composite
def plaintexts(draw, shape=None):
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    elements = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
    return draw(hnp.arrays(np.float64, shape, elements=elements))


@st.composite
def plaintext_pairs(draw):
    a = draw(plaintexts())
    # The second operand's shape broadcasts with the first: a suffix of it, with some sides set to 1.
    rank = draw(st.integers(0, a.ndim))
    shape = tuple(1 if draw(st.booleans()) else side for side in a.shape[a.ndim - rank :])
    b = draw(plaintexts(shape))
    return (a, b) if draw(st.booleans()) else (b, a)


# One jitted function per test (retraced per shape) compiles faster than the eager operations one by one.
@jax.jit
def _add_sub(x, y, b):
    return x + y, x - y, b - x


@functools.partial(jax.jit, static_argnames=("axis", "keepdims", "axes"))
def _neg_sum_transpose(x, axis, keepdims, axes):
    return -x, x.sum(axis=axis, keepdims=keepdims), x.transpose(axes), x.T


@given(pair=plaintext_pairs(), n_parties=st.sampled_from(PARTIES), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_add_sub(pair, n_parties, seed):
    a, b = pair
    key_a, key_b = jax.random.split(jax.random.key(seed))
    total, diff, public_diff = _add_sub(share(a, key_a, n_parties), share(b, key_b, n_parties), b)
    assert_close(revealed(total), a + b, 2 * ENC)
    assert_close(revealed(diff), a - b, 2 * ENC)
    assert_close(revealed(public_diff), b - a, 2 * ENC)


@given(a=plaintexts(), n_parties=st.sampled_from(PARTIES), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_hypothesis_neg_sum_transpose(a, n_parties, seed, data):
    axis = data.draw(st.none() | st.integers(-a.ndim, a.ndim - 1) if a.ndim else st.none())
    keepdims = data.draw(st.booleans())
    axes = tuple(data.draw(st.permutations(range(a.ndim))))
    x = share(a, jax.random.key(seed), n_parties)
    neg, total, transposed, reversed_ = _neg_sum_transpose(x, axis, keepdims, axes)
    assert_close(revealed(neg), -a, ENC)
    want = np.sum(a, axis=axis, keepdims=keepdims)
    count = a.size // max(np.size(want), 1)
    assert_close(revealed(total), want, count * ENC)
    assert_close(revealed(transposed), np.transpose(a, axes), ENC)
    assert_close(revealed(reversed_), a.T, ENC)
