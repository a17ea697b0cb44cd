"""Tests of sjax.ring: the ring Z_2^64, fixed-point encoding, and the ring matmul and convolution.

Fixed-point tolerance used throughout: ``encode`` rounds ``x * 2**f`` to the nearest integer, so
``|decode(encode(x)) - x| <= 2**-(f + 1)`` for every ``x`` in the representable range ``|x| < 2**(63 - f)``,
and values on the grid ``k * 2**-f`` round-trip exactly. The ring products are checked bit for bit against
Python integers reduced modulo 2^64.
"""

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
