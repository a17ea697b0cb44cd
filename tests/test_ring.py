"""Tests of sjax.ring: the ring Z_2^64, fixed-point encoding, and the ring matmul and convolution.

Fixed-point tolerance used throughout: ``encode`` rounds ``x * 2**f`` to the nearest integer, so
``|decode(encode(x)) - x| <= 2**-(f + 1)`` for every ``x`` in the representable range ``|x| < 2**(63 - f)``,
and values on the grid ``k * 2**-f`` round-trip exactly. The ring products are checked bit for bit against
Python integers reduced modulo 2^64.
"""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sjax import ring

MOD = 2**64


@pytest.fixture(params=[False, True], ids=["eager", "jit"])
def maybe_jit(request):
    """Runs a function as is, or compiled with jax.jit."""
    return jax.jit if request.param else (lambda f: f)


def ring_ints(values) -> np.ndarray:
    """Python integers (an object array) reduced modulo 2^64, as uint64."""
    reduced = np.asarray(np.asarray(values, dtype=object) % MOD, dtype=object)
    return np.asarray([int(v) for v in reduced.flat], dtype=np.uint64).reshape(reduced.shape)


# -- encode / decode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 30])
def test_round_trip_floats_within_half_ulp(maybe_jit, frac_bits):
    rng = np.random.default_rng(frac_bits)
    x = np.concatenate([rng.uniform(-1e6, 1e6, 200), rng.uniform(-1, 1, 200), [0.0, -0.0]])
    got = maybe_jit(lambda v: ring.decode(ring.encode(v, frac_bits), frac_bits))(jnp.asarray(x))
    assert got.dtype == jnp.float64
    # Rounding to the nearest multiple of 2**-f: error at most half a unit in the last place.
    assert np.all(np.abs(np.asarray(got) - x) <= 2.0 ** -(frac_bits + 1))


@pytest.mark.parametrize("frac_bits", [0, 16, 30])
def test_round_trip_exact_on_grid(maybe_jit, frac_bits):
    rng = np.random.default_rng(1)
    # k * 2**-f is exact in float64 for |k| < 2**53; the ring holds |k| < 2**63.
    k = np.concatenate([rng.integers(-(2**53), 2**53, 300), [0, 1, -1, 2**53 - 1, -(2**53)]])
    x = k * 2.0**-frac_bits
    encoded = maybe_jit(lambda v: ring.encode(v, frac_bits))(jnp.asarray(x))
    assert encoded.dtype == jnp.uint64 and encoded.shape == x.shape
    np.testing.assert_array_equal(np.asarray(encoded), ring_ints(k.tolist()))
    np.testing.assert_array_equal(np.asarray(ring.decode(encoded, frac_bits)), x)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint32])
def test_encode_integers_is_an_exact_shift(maybe_jit, dtype):
    info = np.iinfo(dtype)
    x = np.array([0, 1, 7, info.max, info.min, info.min + 1], dtype=dtype)
    frac_bits = 16
    got = maybe_jit(lambda v: ring.encode(v, frac_bits))(jnp.asarray(x))
    want = ring_ints([int(v) << frac_bits for v in x])
    np.testing.assert_array_equal(np.asarray(got), want)
    # int64 extremes wrap around (they are outside the range); everything else decodes to itself.
    decoded = np.asarray(ring.decode(got, frac_bits))
    np.testing.assert_array_equal(decoded, want.view(np.int64) * 2.0**-frac_bits)
    if dtype != np.int64:
        np.testing.assert_array_equal(np.asarray(ring.decode(got, frac_bits)), x.astype(np.float64))


def test_encode_negative_integers_is_twos_complement():
    got = ring.encode(jnp.array([-1, -2, -(2**40)]), 16)
    np.testing.assert_array_equal(np.asarray(got), ring_ints([-(2**16), -(2**17), -(2**56)]))


def test_encode_bools(maybe_jit):
    got = maybe_jit(lambda v: ring.encode(v, 16))(jnp.array([True, False, True]))
    np.testing.assert_array_equal(np.asarray(got), np.array([2**16, 0, 2**16], dtype=np.uint64))
    np.testing.assert_array_equal(np.asarray(ring.decode(got, 16)), [1.0, 0.0, 1.0])


def test_encode_python_scalars_and_float32():
    assert int(ring.encode(3, 16)) == 3 << 16
    assert int(ring.encode(-2.5, 16)) == MOD - (5 << 15)
    assert int(ring.encode(True, 4)) == 1 << 4
    # float32 values are exact in float64, so 1.5 is on the grid.
    assert int(ring.encode(jnp.float32(1.5), 16)) == 3 << 15


def test_encode_rounds_half_to_even():
    f = 16
    ulp = 2.0**-f
    x = jnp.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 0.51]) * ulp
    got = ring.to_signed(ring.encode(x, f))
    np.testing.assert_array_equal(np.asarray(got), [0, 2, 2, 0, -2, 0, 1])


def test_encode_keeps_shape():
    x = jnp.zeros((2, 0, 3))
    assert ring.encode(x).shape == (2, 0, 3)
    assert ring.encode(jnp.ones((2, 3, 4))).shape == (2, 3, 4)
    assert ring.encode(1.0).shape == ()


def test_encode_rejects_ring_elements():
    with pytest.raises(TypeError, match="uint64"):
        ring.encode(jnp.array([1], dtype=jnp.uint64))


def test_default_frac_bits_is_16():
    assert ring.DEFAULT_FRAC_BITS == 16
    assert int(ring.encode(1.0)) == 2**16
    assert float(ring.decode(jnp.uint64(2**15))) == 0.5


def test_decode_reads_twos_complement(maybe_jit):
    words = np.array([0, 1, 2**63 - 1, 2**63, MOD - 1, MOD - 2**16], dtype=np.uint64)
    got = maybe_jit(lambda w: ring.decode(w, 16))(jnp.asarray(words))
    want = np.array([0, 1, 2**63 - 1, -(2**63), -1, -(2**16)], dtype=np.float64) * 2.0**-16
    np.testing.assert_array_equal(np.asarray(got), want)


# -- the edges of the range --------------------------------------------------------------------------------


@pytest.mark.parametrize("frac_bits", [0, 16, 30])
def test_extremes_of_the_range_round_trip(frac_bits):
    bound = 2 ** (63 - frac_bits)
    # Integers: the largest and smallest representable values.
    ints = jnp.array([bound - 1, -bound], dtype=jnp.int64)
    round_trip = ring.decode(ring.encode(ints, frac_bits), frac_bits)
    np.testing.assert_array_equal(np.asarray(round_trip), [bound - 1, -bound])
    # Floats on the grid just inside the range (52 significant bits, so exact in float64).
    top = (2**63 - 2**11) * 2.0**-frac_bits
    floats = jnp.array([top, -top, -float(bound)])
    round_trip = ring.decode(ring.encode(floats, frac_bits), frac_bits)
    np.testing.assert_array_equal(np.asarray(round_trip), np.asarray(floats))


@pytest.mark.parametrize("frac_bits", [8, 16, 30])
def test_integers_past_the_edge_wrap_around(frac_bits):
    bound = 2 ** (63 - frac_bits)
    x = [bound, bound + 5, -bound - 1, 3 * bound]
    got = ring.decode(ring.encode(jnp.array(x, dtype=jnp.int64), frac_bits), frac_bits)
    # round(x * 2**f) mod 2**64, read as a signed integer: x - 2 * bound * round(x / (2 * bound)).
    np.testing.assert_array_equal(np.asarray(got), [-bound, -bound + 5, bound - 1, -bound])


@pytest.mark.parametrize("frac_bits", [0, 16, 30])
def test_floats_past_the_edge_wrap_around_like_integers(maybe_jit, frac_bits):
    # The documented encoding is round(x * 2**f) mod 2**64 for floats too: past the edge, a float must wrap
    # exactly as the integer of the same value does (not saturate at the largest int64).
    bound = 2 ** (63 - frac_bits)
    values = [bound, bound + bound // 2, -bound - bound // 2, 2 * bound - 2 ** max(0, 11 - frac_bits)]
    got = maybe_jit(lambda v: ring.encode(v, frac_bits))(jnp.array([float(v) for v in values]))
    np.testing.assert_array_equal(np.asarray(got), ring_ints([v << frac_bits for v in values]))


def test_ring_addition_wraps_past_the_top_of_the_range():
    f = 16
    top = ring.encode(jnp.int64(2 ** (63 - f) - 1), f)
    one = ring.encode(jnp.int64(1), f)
    assert float(ring.decode(top + one, f)) == -float(2 ** (63 - f))
    assert float(ring.decode(jnp.uint64(0) - one, f)) == -1.0


# -- to_signed ---------------------------------------------------------------------------------------------


def test_to_signed_keeps_the_bits(maybe_jit):
    words = np.array([[0, 1, 2**62], [2**63 - 1, 2**63, MOD - 1]], dtype=np.uint64)
    got = maybe_jit(ring.to_signed)(jnp.asarray(words))
    assert got.dtype == jnp.int64 and got.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(got), words.view(np.int64))
    np.testing.assert_array_equal(np.asarray(got), [[0, 1, 2**62], [2**63 - 1, -(2**63), -1]])


def test_to_signed_random_words_match_numpy_view():
    words = np.random.default_rng(2).integers(0, MOD, size=(50,), dtype=np.uint64)
    np.testing.assert_array_equal(np.asarray(ring.to_signed(jnp.asarray(words))), words.view(np.int64))


# -- matmul ------------------------------------------------------------------------------------------------


def random_words(rng, shape) -> np.ndarray:
    """Uniform uint64 over the full ring, so products and sums wrap around."""
    return rng.integers(0, MOD, size=shape, dtype=np.uint64, endpoint=False)


def matmul_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    product = np.matmul(a.astype(object), b.astype(object))
    return ring_ints(product)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [
        ((3, 4), (4, 5)),
        ((1, 1), (1, 1)),
        ((5, 7), (7, 2)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4, 5)),
        ((3, 4), (2, 4, 5)),
        ((2, 3, 4), (2, 4, 5)),
        ((1, 3, 4), (2, 4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
    ],
)
def test_matmul_is_exact_modulo_2_64(maybe_jit, a_shape, b_shape):
    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a, b = random_words(rng, a_shape), random_words(rng, b_shape)
    got = maybe_jit(ring.matmul)(jnp.asarray(a), jnp.asarray(b))
    want = matmul_reference(a, b)
    assert got.dtype == jnp.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)


def test_matmul_of_encoded_values_decodes_to_the_scaled_product():
    # Signed values: the two's-complement wrap makes the ring product the signed product.
    a = np.array([[1.5, -2.0], [-0.25, 3.0]])
    b = np.array([[-4.0, 0.5], [2.0, -1.0]])
    got = ring.matmul(ring.encode(a, 8), ring.encode(b, 8))
    np.testing.assert_array_equal(np.asarray(ring.decode(got, 16)), a @ b)


def test_matmul_rejects_non_ring_operands():
    with pytest.raises(TypeError, match="uint64"):
        ring.matmul(jnp.ones((2, 2), jnp.int64), jnp.ones((2, 2), jnp.uint64))
    with pytest.raises(TypeError, match="uint64"):
        ring.matmul(jnp.ones((2, 2), jnp.uint64), jnp.ones((2, 2), jnp.float64))


# -- conv2d ------------------------------------------------------------------------------------------------


def conv2d_reference(x: np.ndarray, w: np.ndarray, strides, padding) -> np.ndarray:
    """NHWC x HWIO convolution over Python integers, with XLA's padding conventions."""
    kh, kw = w.shape[:2]
    if padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif padding == "SAME":
        pads = []
        for size, k, s in zip(x.shape[1:3], (kh, kw), strides):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
    else:
        pads = [tuple(p) for p in padding]
    (top, bottom), (left, right) = pads
    padded_shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
    xp = np.zeros(padded_shape, dtype=object)
    xp[:, top : top + x.shape[1], left : left + x.shape[2], :] = x.astype(object)
    wo = w.astype(object)
    sh, sw = strides
    out_h = (xp.shape[1] - kh) // sh + 1
    out_w = (xp.shape[2] - kw) // sw + 1
    out = np.empty((x.shape[0], out_h, out_w, w.shape[3]), dtype=object)
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[:, i, j, :] = np.tensordot(patch, wo, axes=([1, 2, 3], [0, 1, 2]))
    return ring_ints(out)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "strides", "padding"),
    [
        ((1, 5, 5, 1), (3, 3, 1, 1), (1, 1), "SAME"),
        ((2, 5, 4, 2), (3, 3, 2, 3), (1, 1), "VALID"),
        ((2, 6, 5, 3), (2, 3, 3, 2), (2, 2), "SAME"),
        ((1, 7, 6, 2), (3, 2, 2, 2), (2, 1), "VALID"),
        ((1, 4, 4, 2), (3, 3, 2, 1), (1, 2), ((1, 2), (0, 1))),
        ((3, 3, 3, 1), (1, 1, 1, 4), (1, 1), "SAME"),
    ],
)
def test_conv2d_is_exact_modulo_2_64(maybe_jit, x_shape, w_shape, strides, padding):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x, w = random_words(rng, x_shape), random_words(rng, w_shape)
    conv = maybe_jit(lambda a, b: ring.conv2d(a, b, strides=strides, padding=padding))
    got = conv(jnp.asarray(x), jnp.asarray(w))
    want = conv2d_reference(x, w, strides, padding)
    assert got.dtype == jnp.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)


def test_conv2d_defaults_are_stride_1_same():
    rng = np.random.default_rng(3)
    x, w = random_words(rng, (1, 4, 5, 2)), random_words(rng, (3, 3, 2, 2))
    got = ring.conv2d(jnp.asarray(x), jnp.asarray(w))
    np.testing.assert_array_equal(np.asarray(got), conv2d_reference(x, w, (1, 1), "SAME"))


def test_conv2d_rejects_non_ring_operands():
    with pytest.raises(TypeError, match="uint64"):
        ring.conv2d(jnp.ones((1, 3, 3, 1), jnp.float32), jnp.ones((1, 1, 1, 1), jnp.uint64))
    with pytest.raises(TypeError, match="uint64"):
        ring.conv2d(jnp.ones((1, 3, 3, 1), jnp.uint64), jnp.ones((1, 1, 1, 1), jnp.int64))


# -- check_frac_bits and max_abs ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 16, 30, np.int32(8), np.int64(30), np.uint8(4)])
def test_check_frac_bits_accepts_ints_in_range(value):
    got = ring.check_frac_bits(value)
    assert got == int(value) and type(got) is int


@pytest.mark.parametrize("value", [True, False, 16.0, np.float64(8), "16", None, jnp.array(16), [16]])
def test_check_frac_bits_rejects_non_ints(value):
    with pytest.raises(TypeError, match="frac_bits must be an int"):
        ring.check_frac_bits(value)


@pytest.mark.parametrize("value", [-1, 31, 64, np.int64(-5)])
def test_check_frac_bits_rejects_out_of_range(value):
    with pytest.raises(ValueError, match=r"frac_bits must be in \[0, 30\]"):
        ring.check_frac_bits(value)


def test_max_frac_bits_constant():
    assert ring.MAX_FRAC_BITS == 30
    assert ring.RING_BITS == 64 and ring.RING_DTYPE == jnp.uint64


@pytest.mark.parametrize("frac_bits", [0, 1, 16, 30])
def test_max_abs_is_the_edge_of_the_range(frac_bits):
    bound = ring.max_abs(frac_bits)
    assert bound == 2.0 ** (63 - frac_bits) and isinstance(bound, float)
    # The largest and smallest ring elements are 2**63 - 1 and -2**63 units of 2**-f: inside [-bound, bound).
    extremes = jnp.array([2**63 - 1, 2**63], dtype=jnp.uint64)
    hi, lo = (int(v) for v in np.asarray(ring.to_signed(extremes)))
    assert (hi, lo) == (2**63 - 1, -(2**63))
    assert lo * 2.0**-frac_bits == -bound and (hi + 1) * 2.0**-frac_bits == bound
    assert float(ring.decode(extremes[1], frac_bits)) == -bound


# -- limb decompositions of the ring products --------------------------------------------------------------
#
# Every decomposition must agree bit for bit with XLA's native uint64 product (itself checked against Python
# integers above and below). The float ones are exact only while a contraction of K limb products stays
# within the float's integers (K (2^w - 1)^2 <= 2^p); past that the products are chunked.

LIMB_METHODS = [name for name, d in ring.DECOMPOSITIONS.items() if d.float_dtype is not None]
ALL_ONES = np.uint64(MOD - 1)  # every limb at its maximum


@pytest.fixture(params=LIMB_METHODS)
def method(request):
    return request.param


def native_matmul(a, b):
    return np.asarray(ring.matmul(jnp.asarray(a), jnp.asarray(b), method="native"))


def test_decompositions_cover_64_bits_and_state_their_chunk():
    assert set(ring.PRODUCT_METHODS) == {"auto", "native", *LIMB_METHODS}
    for name in LIMB_METHODS:
        d = ring.DECOMPOSITIONS[name]
        assert sum(d.widths) == 64
        # Exactly the pairs whose shift is below 64.
        offsets = d.offsets
        every = {(i, j) for i in range(len(offsets)) for j in range(len(offsets))}
        assert set(d.pairs) == {(i, j) for i, j in every if offsets[i] + offsets[j] < 64}
        # max_terms is the largest exact contraction: one more term could pass 2^p.
        largest = max(((1 << d.widths[i]) - 1) * ((1 << d.widths[j]) - 1) for i, j in d.pairs)
        assert d.max_terms * largest <= 2**d.significand_bits < (d.max_terms + 1) * largest
    assert [len(ring.DECOMPOSITIONS[n].pairs) for n in ("f64x22", "f64x16", "f32x8")] == [6, 10, 36]
    assert [ring.DECOMPOSITIONS[n].max_terms for n in ("f64x22", "f64x16", "f32x8")] == [512, 2**21 + 64, 258]


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4, 5)),
        ((3, 4), (2, 4, 5)),
        ((1, 3, 4), (2, 4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((4,), (2, 4, 3)),
        ((0, 4), (4, 3)),
        ((3, 0), (0, 2)),
    ],
)
def test_limb_matmul_is_exact(method, a_shape, b_shape):
    rng = np.random.default_rng(sum(a_shape) * 7 + sum(b_shape))
    a, b = random_words(rng, a_shape), random_words(rng, b_shape)
    got = ring.matmul(jnp.asarray(a), jnp.asarray(b), method=method)
    want = matmul_reference(a, b) if a.size and b.size else native_matmul(a, b)
    assert got.dtype == jnp.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)


def test_limb_matmul_256_against_native_under_jit(method):
    rng = np.random.default_rng(256)
    a, b = random_words(rng, (256, 256)), random_words(rng, (256, 256))
    got = jax.jit(functools.partial(ring.matmul, method=method))(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(got), native_matmul(a, b))


@pytest.mark.parametrize("extra", [0, 1, 7])
def test_limb_matmul_worst_case_at_and_past_the_chunk(method, extra):
    # All limbs at their maximum: every float product sum is the largest possible. (2^64 - 1)^2 = 1 mod 2^64,
    # so each output is K mod 2^64. K = max_terms is the longest unchunked contraction, K > max_terms chunks.
    k = ring.DECOMPOSITIONS[method].max_terms + extra
    a = jnp.full((2, k), ALL_ONES, jnp.uint64)
    b = jnp.full((k, 3), ALL_ONES, jnp.uint64)
    got = jax.jit(functools.partial(ring.matmul, method=method))(a, b)
    np.testing.assert_array_equal(np.asarray(got), np.full((2, 3), k, np.uint64))
    # Mixed: all-ones against random words and their complements, against the native product.
    rng = np.random.default_rng(k)
    c = random_words(rng, (k, 2))
    c[: k // 2] = ALL_ONES - c[: k // 2]
    got = ring.matmul(a, jnp.asarray(c), method=method)
    np.testing.assert_array_equal(np.asarray(got), native_matmul(a, c))


@pytest.mark.parametrize("method_", ["f64x22", "f32x8"])
def test_limb_matmul_long_contractions_chunked(method_):
    # Several chunks, not a multiple of the chunk length, with a batch: against the native product.
    rng = np.random.default_rng(11)
    k = 3 * ring.DECOMPOSITIONS[method_].max_terms + 5
    a, b = random_words(rng, (2, 3, k)), random_words(rng, (2, k, 4))
    a[0, 0] = ALL_ONES
    b[1, :, 2] = ALL_ONES
    got = ring.matmul(jnp.asarray(a), jnp.asarray(b), method=method_)
    np.testing.assert_array_equal(np.asarray(got), native_matmul(a, b))


DOT_CASES = [
    # (a shape, b shape, dimension numbers): matmul, batched matmul (the dealer's and vmap's), transposed
    # operands, several contracting dimensions, batch dimensions not in front, an outer product, k = 0.
    ((3, 4), (4, 5), (((1,), (0,)), ((), ()))),
    ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),
    ((4, 3), (5, 4), (((0,), (1,)), ((), ()))),
    ((2, 3, 4, 5), (4, 5, 6), (((2, 3), (0, 1)), ((), ()))),
    ((3, 2, 4), (5, 4, 2), (((2,), (1,)), ((1,), (2,)))),
    ((2, 7, 3, 4), (7, 2, 4, 5), (((3,), (2,)), ((0, 1), (1, 0)))),
    ((3,), (4,), (((), ()), ((), ()))),
    ((3, 0), (0, 2), (((1,), (0,)), ((), ()))),
    ((6,), (6,), (((0,), (0,)), ((), ()))),
]


@pytest.mark.parametrize(("a_shape", "b_shape", "dims"), DOT_CASES)
def test_limb_dot_general_is_exact(method, a_shape, b_shape, dims):
    rng = np.random.default_rng(len(a_shape) + 3 * len(b_shape))
    a, b = jnp.asarray(random_words(rng, a_shape)), jnp.asarray(random_words(rng, b_shape))
    got = jax.jit(functools.partial(ring.dot_general, dimension_numbers=dims, method=method))(a, b)
    want = ring.dot_general(a, b, dims, method="native")
    assert got.dtype == jnp.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    if a.size and b.size and a.ndim <= 2 and b.ndim <= 2:  # small cases against Python integers
        ref = np.tensordot(np.asarray(a).astype(object), np.asarray(b).astype(object), axes=dims[0])
        np.testing.assert_array_equal(np.asarray(got), ring_ints(ref))


def test_limb_dot_general_chunked_with_two_contracting_dimensions():
    # 20 x 30 = 600 terms: above f64x22's and f32x8's chunks.
    rng = np.random.default_rng(5)
    a, b = jnp.asarray(random_words(rng, (2, 20, 3, 30))), jnp.asarray(random_words(rng, (30, 2, 20)))
    dims = (((1, 3), (2, 0)), ((0,), (1,)))
    want = ring.dot_general(a, b, dims, method="native")
    for m in ("f64x22", "f32x8"):
        np.testing.assert_array_equal(np.asarray(ring.dot_general(a, b, dims, method=m)), np.asarray(want))


def test_limb_products_under_vmap_as_protocols_call_them(method):
    # per_party maps the product over the party axis, with the public operand unbatched or batched.
    rng = np.random.default_rng(9)
    s, w = jnp.asarray(random_words(rng, (3, 4, 6))), jnp.asarray(random_words(rng, (6, 5)))
    mm = functools.partial(ring.matmul, method=method)
    got = jax.jit(jax.vmap(mm, in_axes=(0, None)))(s, w)
    np.testing.assert_array_equal(np.asarray(got), np.stack([native_matmul(x, w) for x in s]))
    t = jnp.asarray(random_words(rng, (3, 6, 5)))
    got = jax.vmap(mm)(s, t)
    np.testing.assert_array_equal(np.asarray(got), np.stack([native_matmul(x, y) for x, y in zip(s, t)]))


def test_limb_matmul_of_encoded_values_decodes_to_the_scaled_product(method):
    a = np.array([[1.5, -2.0, 3.25], [-0.25, 3.0, -1e4]])
    b = np.array([[-4.0, 0.5], [2.0, -1.0], [1e3, -7.5]])
    got = ring.matmul(ring.encode(a, 8), ring.encode(b, 8), method=method)
    np.testing.assert_array_equal(np.asarray(ring.decode(got, 16)), a @ b)


CONV_CASES = [
    # (x shape, w shape, params): strides, padding, dilations, layouts, feature and batch groups, 1-D and 3-D.
    ((2, 6, 5, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="SAME")),
    ((2, 7, 6, 2), (2, 3, 2, 3), dict(window_strides=(2, 1), padding=((1, 2), (0, 1)))),
    ((1, 6, 6, 4), (3, 3, 2, 6), dict(window_strides=(1, 1), padding="VALID", feature_group_count=2)),
    ((1, 5, 5, 3), (3, 3, 1, 3), dict(window_strides=(1, 1), padding="SAME", feature_group_count=3)),
    ((4, 5, 5, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="VALID", batch_group_count=2)),
    ((1, 5, 6, 2), (3, 2, 2, 2), dict(window_strides=(1, 1), padding=((1, 1), (0, 1)), lhs_dilation=(2, 1))),
    ((1, 8, 7, 2), (3, 3, 2, 2), dict(window_strides=(1, 2), padding="VALID", rhs_dilation=(2, 2))),
]
NHWC = ("NHWC", "HWIO", "NHWC")


def _conv_both(x, w, method, **params):
    # Jitted: one compilation per case rather than one per operation.
    got = jax.jit(functools.partial(ring.conv_general, method=method, **params))(x, w)
    want = jax.jit(functools.partial(ring.conv_general, method="native", **params))(x, w)
    assert got.dtype == jnp.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize(("x_shape", "w_shape", "params"), CONV_CASES)
def test_limb_conv_general_is_exact(method, x_shape, w_shape, params):
    rng = np.random.default_rng(sum(x_shape) + 3 * sum(w_shape))
    x, w = jnp.asarray(random_words(rng, x_shape)), jnp.asarray(random_words(rng, w_shape))
    _conv_both(x, w, method, dimension_numbers=NHWC, **params)


def test_limb_conv_other_layouts_and_ranks(method):
    rng = np.random.default_rng(21)
    x, w = jnp.asarray(random_words(rng, (2, 3, 6, 5))), jnp.asarray(random_words(rng, (4, 3, 2, 3)))
    nchw = ("NCHW", "OIHW", "NCHW")
    _conv_both(x, w, method, window_strides=(1, 2), padding="SAME", dimension_numbers=nchw)
    _conv_both(x, w, method, window_strides=(1, 1), padding="VALID", dimension_numbers=None)
    x1, w1 = jnp.asarray(random_words(rng, (2, 9, 3))), jnp.asarray(random_words(rng, (3, 3, 2)))
    _conv_both(x1, w1, method, window_strides=(2,), padding="SAME", dimension_numbers=("NWC", "WIO", "NWC"))
    x3, w3 = jnp.asarray(random_words(rng, (1, 4, 4, 3, 2))), jnp.asarray(random_words(rng, (2, 2, 2, 2, 3)))
    dn3 = ("NDHWC", "DHWIO", "NDHWC")
    _conv_both(x3, w3, method, window_strides=(1, 1, 1), padding="VALID", dimension_numbers=dn3)
    w3 = jnp.asarray(random_words(rng, (3, 4, 2, 2, 2)))
    mixed = ("NCDHW", "OIDHW", "NDHWC")
    _conv_both(x3, w3, method, window_strides=(1, 2, 1), padding="SAME", dimension_numbers=mixed)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "params"),
    [
        # 3 x 3 x 60 = 540 terms per output: chunked by f64x22 (512) and f32x8 (258).
        ((1, 5, 5, 60), (3, 3, 60, 4), dict()),
        ((1, 5, 5, 120), (3, 3, 60, 4), dict(feature_group_count=2)),
        ((4, 5, 5, 60), (3, 3, 60, 4), dict(batch_group_count=2)),
        ((1, 4, 5, 2), (2, 3, 2, 5), dict()),  # unchunked
    ],
)
def test_limb_conv_worst_case_and_chunked(method, x_shape, w_shape, params):
    x = jnp.full(x_shape, ALL_ONES, jnp.uint64)
    w = jnp.full(w_shape, ALL_ONES, jnp.uint64)
    _conv_both(x, w, method, window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC, **params)
    rng = np.random.default_rng(sum(x_shape))
    r = jnp.asarray(random_words(rng, w_shape))
    _conv_both(x, r, method, window_strides=(2, 1), padding="VALID", dimension_numbers=NHWC, **params)


def test_limb_conv_window_past_the_chunk_falls_back_to_native():
    # A 17 x 17 window (289 positions) exceeds f32x8's 258 terms even with one feature.
    rng = np.random.default_rng(17)
    x, w = jnp.asarray(random_words(rng, (1, 18, 18, 1))), jnp.asarray(random_words(rng, (17, 17, 1, 2)))
    _conv_both(x, w, "f32x8", window_strides=(1, 1), padding="VALID", dimension_numbers=NHWC)


def test_conv2d_uses_the_chosen_method(method):
    rng = np.random.default_rng(2)
    x, w = random_words(rng, (2, 6, 5, 3)), random_words(rng, (2, 3, 3, 2))
    got = ring.conv2d(jnp.asarray(x), jnp.asarray(w), strides=(2, 2), padding="SAME", method=method)
    np.testing.assert_array_equal(np.asarray(got), conv2d_reference(x, w, (2, 2), "SAME"))


# -- choosing the decomposition ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "kind", "want"),
    [
        ("cpu", None, "f64x22"),
        ("gpu", "NVIDIA H200", "f64x22"),
        ("cuda", "NVIDIA A100-SXM4-80GB", "f64x22"),
        ("gpu", "Tesla V100-SXM2-16GB", "f64x22"),
        ("rocm", "AMD Instinct MI250X", "f64x22"),
        ("gpu", "NVIDIA GeForce RTX 4090", "f32x8"),
        ("gpu", "NVIDIA L4", "f32x8"),
        ("gpu", "Tesla T4", "f32x8"),
        ("tpu", "TPU v5 lite", "f32x8"),
    ],
)
def test_auto_product_method_by_backend(backend, kind, want):
    assert ring.auto_product_method(backend, kind) == want


def test_product_method_override_scope_and_environment(monkeypatch):
    monkeypatch.delenv("SJAX_RING_PRODUCT", raising=False)
    assert ring.product_method() == ring.auto_product_method() == "f64x22"  # on the CPU test machine
    with ring.product_method_scope("f32x8"):
        assert ring.product_method() == "f32x8"
        assert ring.product_method("native") == "native"
    assert ring.product_method() == "f64x22"
    monkeypatch.setenv("SJAX_RING_PRODUCT", "f64x16")
    assert ring.product_method() == "f64x16"
    with ring.product_method_scope("native"):
        assert ring.product_method() == "native"
    with pytest.raises(ValueError, match="unknown ring product method"):
        ring.set_product_method("float128")
    with pytest.raises(ValueError, match="unknown ring product method"):
        ring.matmul(jnp.ones((2, 2), jnp.uint64), jnp.ones((2, 2), jnp.uint64), method="fast")


def test_method_is_read_when_traced():
    a = jnp.asarray(random_words(np.random.default_rng(3), (4, 4)))
    # A fresh function for each trace: JAX caches traces by function, and a cached trace keeps its method.
    with ring.product_method_scope("f32x8"):
        text = str(jax.make_jaxpr(lambda x, y: ring.matmul(x, y))(a, a))
    assert "f32" in text and "f64" not in text
    with ring.product_method_scope("native"):
        text = str(jax.make_jaxpr(lambda x, y: ring.matmul(x, y))(a, a))
    assert "f32" not in text and "f64" not in text


def test_limb_products_reject_mismatched_shapes():
    a = jnp.ones((2, 3), jnp.uint64)
    with pytest.raises(TypeError):
        ring.matmul(a, a)
    with pytest.raises(TypeError):
        ring.dot_general(a, a, (((1,), (1,)), ((0,), (1,))))


# -- properties over shapes --------------------------------------------------------------------------------

_dims = st.integers(min_value=1, max_value=6)


@hypothesis.given(
    method_=st.sampled_from(LIMB_METHODS),
    batch=st.lists(st.integers(1, 3), max_size=2),
    m=_dims,
    k=st.one_of(_dims, st.integers(250, 530)),
    n=_dims,
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["random", "ones", "mixed"]),
)
def test_property_limb_matmul_equals_native(method_, batch, m, k, n, seed, fill):
    rng = np.random.default_rng(seed)
    a, b = random_words(rng, (*batch, m, k)), random_words(rng, (k, n))
    if fill == "ones":
        a[...], b[...] = ALL_ONES, ALL_ONES
    elif fill == "mixed":
        a[..., ::2] = ALL_ONES
        b[1::3] = 0
    got = jax.jit(functools.partial(ring.matmul, method=method_))(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(got), native_matmul(a, b))


@hypothesis.given(
    method_=st.sampled_from(LIMB_METHODS),
    n=st.integers(1, 3),
    size=st.tuples(st.integers(3, 8), st.integers(3, 8)),
    window=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    groups=st.sampled_from([(1, 1), (2, 1), (1, 2)]),
    per_group=st.sampled_from([1, 3, 40]),
    out_per_group=st.integers(1, 3),
    strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["SAME", "VALID", ((1, 0), (2, 1))]),
    lhs_dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    rhs_dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_limb_conv_equals_native(
    method_, n, size, window, groups, per_group, out_per_group, strides, padding, lhs_dilation, rhs_dilation,
    seed,
):
    feature_groups, batch_groups = groups
    rng = np.random.default_rng(seed)
    x = random_words(rng, (n * batch_groups, *size, per_group * feature_groups))
    w = random_words(rng, (*window, per_group, out_per_group * feature_groups * batch_groups))
    if seed % 3 == 0:
        x[...] = ALL_ONES
    if isinstance(padding, str) and lhs_dilation != (1, 1):
        padding = ((1, 1), (0, 2))  # XLA takes string padding only without input dilation
    params = dict(
        window_strides=strides, padding=padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=NHWC, feature_group_count=feature_groups, batch_group_count=batch_groups,
    )  # fmt: skip
    _conv_both(jnp.asarray(x), jnp.asarray(w), method_, **params)
