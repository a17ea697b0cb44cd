"""Tests for the products: ``sjax.mul``, ``sjax.square``, ``sjax.matmul``, ``sjax.conv2d`` and ``sjax.mean``.

Every protocol is compared with plaintext JAX in float64, under ``jax.jit`` for 2, 3 and 5 parties and
eagerly for 3, with secret and public operands, and with several fixed-point precisions. Property tests
(hypothesis) vary shapes and values inside the documented domain. Further topics: determinism in the key,
communication cost of public operands, the key-reuse checker, one compiled program for a composition, and
the errors raised for bad input.

Error budget with ``f`` fractional bits (``f = 16`` by default). Encoding a real rounds to the nearest
multiple of ``2**-f``, so each input is off by at most ``e = 2**-(f + 1)``; a product of the encodings is
then off by at most ``|x| e + |y| e + e**2``, and the truncation back to ``f`` bits (stochastic rounding)
adds less than ``2**-f``. Hence, per output element,

* ``mul``: ``(|x| + |y|) e + e**2 + 2**-f``;
* ``matmul`` / ``conv2d``: the sum of the ``mul`` input terms over the contraction, ``+ 2**-f`` once, which
  :func:`bilinear_bound` computes exactly by running the same contraction on ``|x|``, ``|y|`` and ones;
* a product with a public integer: exact (no encoding error for the integer, no truncation).

A tiny relative slack (``2**-50``) covers float64 rounding in the plaintext reference.
"""

import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sjax
from conftest import PARTIES

# -- helpers ---------------------------------------------------------------------------------------

# Compiling a protocol for a new shape (or a new number of parties) is what costs time in this file, so the
# tests reuse a few shapes and cut every secret out of ONE sharing of POOL values (slicing and reshaping a
# share are local operations): the sharing compiles once per number of parties, for the shape that
# test_sharing.py and test_truncation.py share too.
POOL = 1024
CONV_DN = ("NHWC", "HWIO", "NHWC")


def share_all(key, n, *arrays, frac_bits=16):
    """Shares several plaintext arrays for ``n`` parties with one call of :func:`sjax.share`."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    flat = np.concatenate([a.ravel() for a in arrays])
    assert flat.size <= POOL
    pooled = sjax.share(np.pad(flat, (0, POOL - flat.size)), key, n_parties=n, frac_bits=frac_bits)
    out, start = [], 0
    for a in arrays:
        out.append(pooled[start : start + a.size].reshape(a.shape))
        start += a.size
    return out if len(out) > 1 else out[0]


def _uniform(seed, shape, scale):
    return np.random.default_rng(seed).uniform(-scale, scale, size=shape)


def _bound(f=16):
    """(per-input encoding error, truncation error) for ``f`` fractional bits."""
    return 2.0 ** -(f + 1), 2.0**-f


def mul_bound(x, y, f=16):
    e, t = _bound(f)
    x, y = np.abs(np.asarray(x)), np.abs(np.asarray(y))
    return (x + y) * e + e * e + t + (x * y) * 2.0**-50


def bilinear_bound(product, x, y, f=16):
    """Error bound of a secret bilinear product (matmul or conv) computed through ``product`` in float64."""
    e, t = _bound(f)
    ax, ay = np.abs(np.asarray(x)), np.abs(np.asarray(y))
    ox, oy = np.ones_like(ax), np.ones_like(ay)
    p = lambda a, b: np.asarray(product(a, b))  # noqa: E731
    return (p(ax, oy) + p(ox, ay)) * e + p(ox, oy) * e * e + t + p(ax, ay) * 2.0**-50


def mean_bound(expected, f=16):
    # Documented: |mean| 2^-(f+1) (rounding of 1/count) + 2^-f (truncation); plus the inputs' encoding e.
    e, t = _bound(f)
    return (np.abs(expected) + e) * e + t + e


def conv_ref(x, w, strides=(1, 1), padding="SAME"):
    return np.asarray(
        jax.lax.conv_general_dilated(
            jnp.asarray(x, jnp.float64),
            jnp.asarray(w, jnp.float64),
            window_strides=strides,
            padding=padding,
            dimension_numbers=CONV_DN,
            precision=jax.lax.Precision.HIGHEST,
        )
    )


def check(out, expected, bound, what=""):
    """Asserts ``|out - expected| <= bound`` elementwise (``bound=0``: bit-exact) and equal shapes."""
    out, expected = np.asarray(out), np.asarray(expected)
    assert out.shape == expected.shape, f"{what}: shape {out.shape}, expected {expected.shape}"
    err = np.abs(out - expected)
    assert np.all(err <= bound), f"{what}: max error {err.max():.3g}, bound {np.min(bound):.3g}"


def assert_close(share, expected, bound, what=""):
    check(sjax.reveal(share), expected, bound, what)


# Hypothesis tests take the function-scoped `keys` fixture: it is an endless stream, so every example draws
# fresh keys from it.
given_settings = settings(
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture]
)


# -- every protocol against plaintext, for every number of parties, eager and jitted ---------------

# The inputs: two [2, 3] matrices, a [3, 2, 3] stack (for a mean over a non-power-of-two count), an NHWC
# image and an HWIO kernel, and public operands of every kind.
X, Y = _uniform(1, (2, 3), 1000), _uniform(2, (2, 3), 1000)  # |x y| <= 1e6, inside mul's 2^30
X3 = _uniform(3, (3, 2, 3), 1000)
IMG, KER = _uniform(4, (2, 4, 4, 2), 10), _uniform(5, (3, 3, 2, 3), 1)
C_FLOAT = np.array([0.5, -1.25, 3.14159])  # broadcasts along the rows of X
C_INT = np.array([[2, -3, 0], [7, 1, -100]])
W_FLOAT = _uniform(6, (3, 2), 10)
W_INT = np.array([[1, -2, 3], [0, 5, -1]])
KER_INT = np.round(KER * 4).astype(np.int64)


def all_protocols(xs, ys, x3s, imgs, kers, key):
    """Every protocol once, with secret and public operands: a function of shares and a key."""
    k = jax.random.split(key, 13)
    return {
        "mul": sjax.mul(xs, ys, k[0]),
        "square": sjax.square(xs, k[1]),
        "mul secret*float": sjax.mul(xs, C_FLOAT, k[2]),
        "mul int*secret": sjax.mul(C_INT, xs, k[3]),
        "matmul": sjax.matmul(xs, ys.T, k[4]),
        "matmul secret@float": sjax.matmul(xs, W_FLOAT, k[5]),
        "matmul int@secret": sjax.matmul(W_INT, xs.T, k[6]),
        "conv2d": sjax.conv2d(imgs, kers, k[7]),
        "conv2d secret*float": sjax.conv2d(imgs, KER, k[8]),
        "conv2d float*secret": sjax.conv2d(IMG, kers, k[9]),
        "conv2d secret*int": sjax.conv2d(imgs, KER_INT, k[10]),
        "mean axis=0": sjax.mean(x3s, k[11], axis=0),
        "mean": sjax.mean(xs, k[12]),
    }


_all_protocols_jit = jax.jit(all_protocols)


def expected_results(xs, imgs):
    """name -> (plaintext result in float64, error bound); bound 0 means bit-exact.

    Products with public integers are exact, so they are compared with the same product of the revealed
    (encoded) inputs; everything else is compared with the plaintext inputs, within the budget above.
    """
    xr, imgr = np.asarray(sjax.reveal(xs)), np.asarray(sjax.reveal(imgs))
    return {
        "mul": (X * Y, mul_bound(X, Y)),
        "square": (X * X, mul_bound(X, X)),
        "mul secret*float": (X * C_FLOAT, mul_bound(X, C_FLOAT)),
        "mul int*secret": (C_INT * xr, 0),
        "matmul": (X @ Y.T, bilinear_bound(np.matmul, X, Y.T)),
        "matmul secret@float": (X @ W_FLOAT, bilinear_bound(np.matmul, X, W_FLOAT)),
        "matmul int@secret": (W_INT @ xr.T, 0),
        "conv2d": (conv_ref(IMG, KER), bilinear_bound(conv_ref, IMG, KER)),
        "conv2d secret*float": (conv_ref(IMG, KER), bilinear_bound(conv_ref, IMG, KER)),
        "conv2d float*secret": (conv_ref(IMG, KER), bilinear_bound(conv_ref, IMG, KER)),
        "conv2d secret*int": (conv_ref(imgr, KER_INT), 0),
        "mean axis=0": (X3.mean(axis=0), mean_bound(X3.mean(axis=0))),
        "mean": (X.mean(), mean_bound(X.mean())),
    }


# Under jax.jit for every number of parties; eagerly (op by op: the same trace, dispatched primitive by
# primitive, which compiles every primitive again for each new party count and is several times slower)
# for 3 parties, the general case. The eager path also runs for 3 parties in every later test of this
# file, and for 2, 3 and 5 parties in test_sharing.py and test_truncation.py.
@pytest.mark.parametrize(
    "n, use_jit", [(2, True), (3, True), (5, True), (3, False)], ids=["2-jit", "3-jit", "5-jit", "3-eager"]
)
def test_every_protocol_matches_plaintext(keys, n, use_jit):
    xs, ys, x3s, imgs, kers = share_all(keys(), n, X, Y, X3, IMG, KER)
    results = (_all_protocols_jit if use_jit else all_protocols)(xs, ys, x3s, imgs, kers, keys())
    expected = expected_results(xs, imgs)
    assert results.keys() == expected.keys()
    for name, share in results.items():
        assert isinstance(share, sjax.ArithShare), name
        assert (share.n_parties, share.frac_bits) == (n, 16), name
        assert_close(share, *expected[name], what=name)


# -- fixed-point precisions other than 16 bits -------------------------------------------------------


@pytest.mark.parametrize("frac_bits, scale", [(8, 1000.0), (20, 100.0), (30, 0.5)])
def test_products_with_other_precisions(keys, frac_bits, scale):
    # Domain of a product: |x y| < 2^(62 - 2f), i.e. 2^46, 2^22 and 2^2 for f = 8, 20, 30.
    x, y = X / 1000 * scale, Y / 1000 * scale
    xs, ys = share_all(keys(), 3, x, y, frac_bits=frac_bits)
    z = sjax.mul(xs, ys, keys())
    assert z.frac_bits == frac_bits
    assert_close(z, x * y, mul_bound(x, y, frac_bits), "mul")
    assert_close(sjax.square(xs, keys()), x * x, mul_bound(x, x, frac_bits), "square")
    m = sjax.matmul(xs, ys.T, keys())
    assert_close(m, x @ y.T, bilinear_bound(np.matmul, x, y.T, frac_bits), "matmul")
    c = sjax.mul(xs, C_FLOAT, keys())
    assert_close(c, x * C_FLOAT, mul_bound(x, C_FLOAT, frac_bits), "mul by float")


def test_integer_arithmetic_with_zero_frac_bits_is_exact(keys):
    # With f = 0 shares are integers and products need no truncation: every result is exact.
    x = np.array([[3, -7, 120], [0, 99999, -1]])
    y = np.array([[-5, 11, 1000], [42, -3, -1]])
    xs, ys = share_all(keys(), 3, x, y, frac_bits=0)
    check(sjax.reveal(sjax.mul(xs, ys, keys())), x * y, 0, "mul")
    check(sjax.reveal(sjax.square(xs, keys())), x * x, 0, "square")
    check(sjax.reveal(sjax.matmul(xs, ys.T, keys())), x @ y.T, 0, "matmul")
    check(sjax.reveal(sjax.mul(xs, C_INT, keys())), x * C_INT, 0, "mul by int")


# -- shapes: broadcasting, 1-D and batched matmul, strides and padding; property tests -------------
#
# Each new shape costs a compilation (a second or more), so every shape below comes from a small pool that
# holds the cases of the semantics (broadcasting on either side, scalars, 1-D and batched operands, sizes 1
# and 6); a parametrized test runs each case once, and a property test (hypothesis) then draws values
# freely for the same cases, reusing the compiled programs. Each program runs every variant (secret or
# public operands) at once. Three parties: the general case (truncation by local shifts would already be
# wrong there).

HYP_N = 3
_finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _arrays(shape, bound, dtype=np.float64):
    if dtype == np.int64:
        return hnp.arrays(dtype, shape, elements=st.integers(-int(bound), int(bound)))
    return hnp.arrays(dtype, shape, elements=st.floats(-bound, bound, **_finite))


@jax.jit
def _mul_every_side(x, y, y_int, key):
    """reveal of: x's encoding, x * y, y * x with y public, x * y_int with y_int public, x * x (square)."""
    k = jax.random.split(key, 6)
    xs, ys = sjax.share(x, k[0], n_parties=HYP_N), sjax.share(y, k[1], n_parties=HYP_N)
    return (
        sjax.reveal(xs),
        sjax.reveal(sjax.mul(xs, ys, k[2])),
        sjax.reveal(sjax.mul(y, xs, k[3])),
        sjax.reveal(sjax.mul(xs, y_int, k[4])),
        sjax.reveal(sjax.square(xs, k[5])),
    )


def _check_mul_every_side(x, y, y_int, key):
    x_encoded, secret, public_float, public_int, square = _mul_every_side(x, y, y_int, key)
    check(secret, x * y, mul_bound(x, y), "secret * secret")
    check(public_float, x * y, mul_bound(x, y), "public float * secret")
    check(public_int, np.asarray(x_encoded) * y_int, 0, "secret * public int")
    check(square, x * x, mul_bound(x, x), "square")


# Broadcasting on both sides at once, and a scalar against a matrix (trailing-axis broadcasting of a public
# operand is in the grid above).
MUL_SHAPES = [((4, 1), (1, 5)), ((), (2, 3))]


@pytest.mark.parametrize("x_shape, y_shape", MUL_SHAPES, ids=["both-sides", "scalar"])
def test_mul_broadcasts_like_numpy(keys, x_shape, y_shape):
    x, y = _uniform(14, x_shape, 1000), _uniform(15, y_shape, 1000)
    _check_mul_every_side(x, y, np.round(y).astype(np.int64), keys())


@st.composite
def _mul_case(draw):
    x_shape, y_shape = draw(st.sampled_from(MUL_SHAPES))
    # |x|, |y| <= 3e4 keeps |x y| < 9e8 < 2^30, the domain of a product with f = 16 (and of square:
    # |x| < 2^15).
    return draw(_arrays(x_shape, 3e4)), draw(_arrays(y_shape, 3e4)), draw(_arrays(y_shape, 3e4, np.int64))


@given_settings
@given(case=_mul_case())
def test_mul_and_square_property(keys, case):
    _check_mul_every_side(*case, keys())


@jax.jit
def _matmul_every_side(x, y, key):
    """reveal of x @ y with both secret, with x public, and with y public."""
    k = jax.random.split(key, 5)
    xs, ys = sjax.share(x, k[0], n_parties=HYP_N), sjax.share(y, k[1], n_parties=HYP_N)
    pairs = ((xs, ys, k[2]), (x, ys, k[3]), (xs, y, k[4]))
    return [sjax.reveal(sjax.matmul(a, b, kk)) for a, b, kk in pairs]


def _check_matmul_every_side(x, y, key):
    expected = np.matmul(x, y)
    for side, out in zip(("secret", "public-left", "public-right"), _matmul_every_side(x, y, key)):
        check(out, expected, bilinear_bound(np.matmul, x, y), side)


# jnp.matmul's cases, with m, k, p in 1..6 including both edges (2-D @ 2-D is also in the grid above).
MATMUL_SHAPES = [((6, 1), (1, 6)), ((6,), (6,)), ((3,), (3, 2)), ((2, 1, 2, 3), (3, 3, 2))]


@pytest.mark.parametrize(
    "x_shape, y_shape", MATMUL_SHAPES, ids=["outer", "vec@vec", "vec@mat", "batched-broadcast"]
)
def test_matmul_follows_jnp_matmul_semantics(keys, x_shape, y_shape):
    _check_matmul_every_side(_uniform(16, x_shape, 100), _uniform(17, y_shape, 100), keys())


@st.composite
def _matmul_case(draw):
    x_shape, y_shape = draw(st.sampled_from(MATMUL_SHAPES))
    # |x|, |y| <= 1e4 and k <= 6: every sum of products stays below 6e8 < 2^30.
    return draw(_arrays(x_shape, 1e4)), draw(_arrays(y_shape, 1e4))


@given_settings
@given(case=_matmul_case())
def test_matmul_property(keys, case):
    _check_matmul_every_side(*case, keys())


@pytest.mark.parametrize(
    "strides, padding",
    [((2, 1), "VALID"), ((2, 2), ((1, 0), (0, 2)))],
    ids=["stride21-valid", "stride22-explicit"],
)
def test_conv2d_strides_and_padding(keys, strides, padding):
    # Non-square shapes throughout, so that a transposed layout could not pass.
    x, w = _uniform(18, (1, 5, 4, 2), 10), _uniform(19, (3, 2, 2, 3), 1)

    @jax.jit
    def conv_every_side(x, w, key):
        k = jax.random.split(key, 4)
        xs, ws = sjax.share(x, k[0], n_parties=3), sjax.share(w, k[1], n_parties=3)
        pairs = ((xs, ws, k[2]), (xs, w, k[3]))
        return [sjax.reveal(sjax.conv2d(a, b, kk, strides=strides, padding=padding)) for a, b, kk in pairs]

    ref = functools.partial(conv_ref, strides=strides, padding=padding)
    for side, out in zip(("secret", "public-kernel"), conv_every_side(x, w, keys())):
        check(out, ref(x, w), bilinear_bound(ref, x, w), side)


# -- determinism -----------------------------------------------------------------------------------


@pytest.fixture
def grid3(keys):
    """Shares of the grid's inputs for 3 parties (the shapes every test below reuses)."""
    return share_all(keys(), 3, X, Y, X3, IMG, KER)


@pytest.mark.parametrize(
    "protocol",
    [
        lambda s, k: sjax.mul(s[0], s[1], k),
        lambda s, k: sjax.matmul(s[0], s[1].T, k),
        lambda s, k: sjax.conv2d(s[3], s[4], k),
    ],
    ids=["mul", "matmul", "conv2d"],
)
def test_same_key_same_shares_different_key_fresh_shares(keys, grid3, protocol):
    key = keys()
    key_copy = jax.random.clone(key)  # same key material; a separate key object for the reuse checker
    first, again, fresh = protocol(grid3, key), protocol(grid3, key_copy), protocol(grid3, keys())
    assert np.array_equal(np.asarray(first.shares), np.asarray(again.shares))
    # Fresh randomness everywhere: an equal 64-bit share by chance has probability 2^-64 per element.
    assert not np.any(np.asarray(first.shares) == np.asarray(fresh.shares))
    # Both results are floor(z) or floor(z) + 1 in the last place for the same exact product z.
    assert np.max(np.abs(np.asarray(sjax.reveal(first)) - np.asarray(sjax.reveal(fresh)))) <= 2.0**-16


# -- communication cost of public operands -------------------------------------------------------------


def test_products_with_public_integers_need_no_communication(keys, grid3):
    xs, _, _, imgs, _ = grid3
    for cost in (
        sjax.cost(sjax.mul)(xs, 3, keys()),
        sjax.cost(sjax.mul)(C_INT, xs, keys()),
        sjax.cost(sjax.matmul)(xs, W_INT.T, keys()),
        sjax.cost(sjax.conv2d)(imgs, KER_INT, keys()),
    ):
        assert (cost.rounds, cost.bytes_per_party, cost.dealer_bytes) == (0, 0, 0)


def test_products_with_public_floats_cost_one_round(keys, grid3):
    xs, _, _, imgs, _ = grid3
    for cost in (
        sjax.cost(sjax.mul)(xs, 0.5, keys()),
        sjax.cost(sjax.mul)(C_FLOAT, xs, keys()),
        sjax.cost(sjax.matmul)(xs, W_FLOAT, keys()),
        sjax.cost(sjax.conv2d)(imgs, KER, keys()),
    ):
        assert cost.rounds == 1
    # For contrast: two secrets need a Beaver opening and a truncation.
    assert sjax.cost(sjax.mul)(xs, xs, keys()).rounds == 2


@pytest.mark.parametrize("n_parties", [2, 3])
def test_small_public_factors_keep_their_significant_digits(keys, n_parties):
    # 1/569 at 16 fractional bits alone is 115/2^16, 0.15% low; encoded with its 9 leading zero bits
    # more, its relative error is below 2^-16.
    x = np.array([569.0, 5690.0, -56900.0, 1138.0, 0.0])
    c = 1.0 / 569
    s = sjax.share(jnp.asarray(x), keys(), n_parties)
    # (A factor closed over by a jitted function is concrete; one passed as a jit argument is traced and
    # gets frac_bits only, as documented.)
    for product in (jax.jit(lambda s, k: sjax.mul(s, c, k))(s, keys()), sjax.mul(np.full(5, c), s, keys())):
        # Error: the truncation's 2^-16 and the factor's encoding, 2^-(16 + 9 + 1), times |x|.
        assert np.all(np.abs(sjax.reveal(product) - x * c) <= 2**-16 + np.abs(x) * 2**-26)
    w = np.array([[1e-3], [-2.5e-4], [3e-3], [1e-3], [0.0]])
    got = sjax.reveal(jax.jit(lambda s, k: sjax.matmul(s, w, k))(s, keys()))
    assert np.all(np.abs(got - x @ w) <= 2**-16 + np.abs(x) @ np.full((5, 1), 2**-(16 + 8 + 1)))
    # The domain for a factor below 1: |x| < 2^(62 - 2 f) = 2^30 at 16 bits.
    big = sjax.share(jnp.asarray([2.0**29, -(2.0**29)]), keys(), n_parties)
    got = sjax.reveal(sjax.mul(big, 1e-6, keys()))  # the encoding error: 2^29 * 2^-(16 + 19 + 1)
    np.testing.assert_allclose(got, [536.870912, -536.870912], rtol=0, atol=2**-7 + 2**-16)


def test_the_extra_bits_of_a_public_factor():
    from sjax.shares import public_factor_bits

    assert public_factor_bits(1 / 569, 16) == 16 + 9  # 2^-10 < 1/569 < 2^-9
    assert public_factor_bits(np.array([0.5, -0.75]), 16) == 16  # no leading zero bits
    assert public_factor_bits(3.0, 16) == 16 and public_factor_bits(0.0, 16) == 16
    assert public_factor_bits(1e-30, 16) == 16 + 30  # at most 62 - 2 f more
    assert public_factor_bits(1e-3, 20) == 20 + 9


# -- keys: the reuse checker is live, compositions pass it -----------------------------------------


def test_mul_twice_with_the_same_key_raises(keys, grid3):
    xs, ys = grid3[:2]
    key = keys()
    sjax.mul(xs, ys, key)
    with pytest.raises(jax.errors.KeyReuseError):
        sjax.mul(xs, ys, key)


def test_key_reuse_inside_a_jitted_function_raises(keys, grid3):
    def twice(x, key):
        return sjax.mul(x, x, key), sjax.mul(x, x, key)

    with pytest.raises(jax.errors.KeyReuseError):
        jax.jit(twice)(grid3[0], keys())


@pytest.mark.parametrize(
    "protocol",
    [
        lambda s, k: sjax.square(s[0], k),
        lambda s, k: sjax.matmul(s[0], s[1].T, k),
        lambda s, k: sjax.conv2d(s[3], s[4], k),
        lambda s, k: sjax.mul(s[0], C_FLOAT, k),
        lambda s, k: sjax.matmul(s[0], W_FLOAT, k),
        lambda s, k: sjax.conv2d(s[3], KER, k),
        lambda s, k: sjax.mean(s[0], k),
    ],
    ids=["square", "matmul", "conv2d", "mul-float", "matmul-float", "conv2d-float", "mean"],
)
def test_every_protocol_consumes_its_key(keys, grid3, protocol):
    # A protocol run twice with one key reuses its masks (for a truncation, the opened x + r and y + r
    # reveal x - y), so the checker must flag the second call.
    key = keys()
    protocol(grid3, key)
    with pytest.raises(jax.errors.KeyReuseError):
        protocol(grid3, key)


def test_a_legacy_raw_key_is_accepted(grid3):
    xs, ys = grid3[:2]
    assert_close(sjax.mul(xs, ys, jax.random.PRNGKey(7)), X * Y, mul_bound(X, Y))


def _composed(a, b, key):
    k_a, k_b, k_mul, k_matmul = jax.random.split(key, 4)
    xs = sjax.share(a, k_a, n_parties=3)
    ys = sjax.share(b, k_b, n_parties=3)
    z = sjax.mul(xs, ys, k_mul)
    return sjax.reveal(sjax.matmul(z, ys.T, k_matmul))


def test_composed_program_runs_under_the_checker_and_compiles_to_one_program(keys):
    a, b = X / 100, Y / 100
    jitted = jax.jit(_composed)
    # One top-level equation: the whole composition is a single jitted call.
    jaxpr = jax.make_jaxpr(jitted)(a, b, keys())
    assert [eqn.primitive.name for eqn in jaxpr.eqns] in (["jit"], ["pjit"])
    lowered = jitted.lower(a, b, keys())
    assert lowered.as_text().count("func.func public @main") == 1
    compiled = lowered.compile()
    out = np.asarray(compiled(a, b, keys()))
    # z = mul(a, b) is off by at most inner = mul_bound(a, b); the matmul of z and b (encoding error e)
    # is then off by sum_k (inner |b| + |a b| e + inner e) + 2^-16 (its truncation).
    inner = mul_bound(a, b)
    bound = inner @ (np.abs(b.T) + 2.0**-17) + np.abs(a * b) @ np.full(b.T.shape, 2.0**-17) + 2.0**-16
    check(out, (a * b) @ b.T, bound)


# -- bad input -----------------------------------------------------------------------------------


@pytest.fixture
def two_and_three(keys):
    """Shares of X for 2 parties and for 3 parties, and for 2 parties with frac_bits=8."""
    return share_all(keys(), 2, X), share_all(keys(), 3, X), share_all(keys(), 2, X, frac_bits=8)


def test_combining_shares_of_different_party_counts_is_a_value_error(keys, two_and_three):
    s2, s3, _ = two_and_three
    with pytest.raises(ValueError, match="2 parties and shares of 3 parties"):
        sjax.mul(s2, s3, keys())
    with pytest.raises(ValueError, match="3 parties and shares of 2 parties"):
        sjax.matmul(s3, s2.T, keys())
    with pytest.raises(ValueError, match="parties"):
        sjax.conv2d(s2.reshape(1, 1, 2, 3), s3.reshape(1, 2, 3, 1), keys())


def test_combining_shares_of_different_precisions_is_a_value_error(keys, two_and_three):
    s16, _, s8 = two_and_three
    with pytest.raises(ValueError, match="frac_bits=16 and frac_bits=8"):
        sjax.mul(s16, s8, keys())
    with pytest.raises(ValueError, match="frac_bits=8 and frac_bits=16"):
        sjax.matmul(s8, s16.T, keys())


def test_shape_mismatches_are_value_errors(keys, two_and_three):
    s, _, _ = two_and_three  # shape (2, 3)
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(2,\) do not broadcast"):
        sjax.mul(s, s[0, :2], keys())
    with pytest.raises(ValueError, match=r"do not broadcast"):
        sjax.mul(s, np.ones(4), keys())
    with pytest.raises(ValueError, match=r"matmul shapes \(2, 3\) and \(2, 3\) do not match"):
        sjax.matmul(s, s, keys())
    with pytest.raises(ValueError, match="matmul shapes"):
        sjax.matmul(s, np.ones((2, 2)), keys())
    with pytest.raises(ValueError, match="rank 1 or more"):
        sjax.matmul(s, 2.0, keys())


def test_conv2d_bad_shapes_and_arguments_are_value_errors(keys, two_and_three):
    s, _, _ = two_and_three
    img = s.reshape(1, 2, 3, 1)
    with pytest.raises(ValueError, match="1 channels but the kernel expects 2"):
        sjax.conv2d(img, np.ones((1, 1, 2, 1)), keys())
    with pytest.raises(ValueError, match="NHWC input and an HWIO kernel"):
        sjax.conv2d(s, np.ones((1, 1, 1, 1)), keys())
    with pytest.raises(ValueError, match="NHWC input and an HWIO kernel"):
        sjax.conv2d(img, np.ones((1, 1, 1)), keys())
    for padding in ("same", "FULL", ((1, 1),), ((1, -1), (0, 0))):
        with pytest.raises(ValueError, match="padding"):
            sjax.conv2d(img, np.ones((1, 1, 1, 1)), keys(), padding=padding)
    for strides in ((0, 1), (1,), (1, 1, 1), (1.5, 1), (-1, 1)):
        with pytest.raises(ValueError, match="strides"):
            sjax.conv2d(img, np.ones((1, 1, 1, 1)), keys(), strides=strides)


def test_conv2d_scalar_padding_gives_an_error_that_names_it(keys, two_and_three):
    img = two_and_three[0].reshape(1, 2, 3, 1)
    with pytest.raises((TypeError, ValueError), match="padding"):
        sjax.conv2d(img, np.ones((1, 1, 1, 1)), keys(), padding=1)


def test_conv2d_scalar_strides_mean_the_same_stride_on_both_axes(keys, two_and_three):
    # Like flax.linen.Conv, an int stride s means (s, s).
    img = two_and_three[0].reshape(1, 2, 3, 1)
    kernel = np.full((1, 1, 1, 1), 2)
    scalar = sjax.reveal(sjax.conv2d(img, kernel, keys(), strides=2))
    pair = sjax.reveal(sjax.conv2d(img, kernel, keys(), strides=(2, 2)))
    np.testing.assert_array_equal(scalar, pair)
    assert scalar.shape == (1, 1, 2, 1)


@pytest.mark.parametrize(
    "bad_key",
    [3, 1.0, jnp.ones(2), jnp.zeros(3, jnp.uint32)],
    ids=["int", "float", "float-array", "uint32-len3"],
)
def test_a_non_key_is_a_type_error(two_and_three, bad_key):
    s, _, _ = two_and_three
    for protocol in (sjax.mul, lambda x, y, k: sjax.matmul(x, y.T, k), lambda x, _, k: sjax.square(x, k)):
        with pytest.raises(TypeError, match="must be a JAX PRNG key"):
            protocol(s, s, bad_key)


def test_a_batch_of_keys_is_a_value_error(keys, two_and_three):
    s, _, _ = two_and_three
    with pytest.raises(ValueError, match="single PRNG key"):
        sjax.mul(s, s, jax.random.split(keys(), 3))
    with pytest.raises(ValueError, match="single PRNG key"):
        sjax.conv2d(s.reshape(1, 2, 3, 1), np.ones((1, 1, 1, 1)), jax.random.split(keys(), 2))
    # A batch of legacy raw keys, uint32[3, 2].
    with pytest.raises(ValueError, match="single PRNG key"):
        sjax.mul(s, s, jax.random.split(jax.random.PRNGKey(0), 3))


def test_products_without_any_share_are_type_errors(keys):
    with pytest.raises(TypeError, match="mul needs at least one ArithShare"):
        sjax.mul(np.ones(3), 2.0, keys())
    with pytest.raises(TypeError, match="matmul needs at least one ArithShare"):
        sjax.matmul(np.ones((2, 2)), np.ones((2, 2)), keys())
    with pytest.raises(TypeError, match="conv2d needs at least one ArithShare"):
        sjax.conv2d(np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1)), keys())
    for unary in (sjax.square, sjax.mean, sjax.truncate):
        with pytest.raises(TypeError, match="takes an ArithShare"):
            unary(np.ones(3), keys())


def test_ambiguous_public_operands_are_type_errors(keys, two_and_three):
    s, _, _ = two_and_three
    with pytest.raises(TypeError, match="uint64 public values are ambiguous"):
        sjax.mul(s, np.uint64(2), keys())
    with pytest.raises(TypeError, match="complex"):
        sjax.mul(s, 1j, keys())


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300], ids=["nan", "inf", "huge"])
def test_non_finite_or_unrepresentable_public_operands_are_value_errors(keys, two_and_three, value):
    # sjax.share rejects these; a public operand that cannot be encoded must not silently become garbage.
    _, s, _ = two_and_three
    with pytest.raises(ValueError, match="NaN|infinite|range"):
        sjax.mul(s, value, keys())
