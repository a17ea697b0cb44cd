"""Tests for :mod:`sjax.randomness`: key checks and the dealer's correlated randomness.

The correlations are produced inside a protocol body run by the simulate runner, exactly as the protocols
use them, and reconstructed here with Python integers modulo 2^64 (object arrays), independently of the
``uint64`` wrap-around the library relies on.

Compiling a correlation takes about a second on a small CPU, so the correlations are dealt by two jitted
bodies, compiled once each: ``dealt`` holds the core ones (a dealer-corrected triple and the owner's masks)
for every number of parties in ``PARTIES``, ``extra`` all the others for three parties. The tests then
check one property each on those arrays.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import PARTIES

import sjax
from sjax import randomness, ring
from sjax.parallel import simulate

MOD = 2**64
LOW_63 = 2**63 - 1
TRUNCATION_BITS = (1, 16, 61)


# -- helpers ---------------------------------------------------------------------------------------------


def run_parties(body, n, *replicated, jit=False):
    """Runs ``body(*replicated)`` once per party for ``n`` parties; outputs stacked on the party axis."""
    placeholder = jnp.zeros((n,), jnp.uint8)

    def run(*r):
        return simulate.run(lambda _, *rr: body(*rr), (placeholder,), r)

    return (jax.jit(run) if jit else run)(*replicated)


def as_ints(x) -> np.ndarray:
    """A ``uint64`` array as an object array of Python ints (exact, no wrap-around)."""
    return np.vectorize(int, otypes=[object])(np.asarray(x))


def add_open(stacked) -> np.ndarray:
    """The secret behind additive shares stacked on axis 0: their sum modulo 2^64, in Python ints."""
    return as_ints(stacked).sum(axis=0) % MOD


def xor_open(stacked) -> np.ndarray:
    return functools.reduce(np.bitwise_xor, as_ints(stacked))


def conv_reference(x, w):
    """VALID, stride-1 NHWC x HWIO convolution modulo 2^64 with Python ints."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    out = np.zeros((n, h - kh + 1, wd - kw + 1, o), dtype=object)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i : i + kh, j : j + kw, :]  # [n, kh, kw, c]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out % MOD


def conv_valid(a, b):
    return ring.conv2d(a, b, padding="VALID")


# -- bodies that deal the correlations -----------------------------------------------------------------

SHAPES = {
    "mul": ((2, 3), (3,)),  # broadcasting elementwise product
    "matmul": ((2, 3), (3, 4)),
    "conv": ((1, 4, 4, 2), (3, 3, 2, 3)),
}
EXTRA_PARTIES = 3  # the number of parties for the correlations not checked for every n


def deal_core(key):
    """One party's shares of the correlations checked for every number of parties.

    One dealer-corrected correlation (the correction sums the other n - 1 parties' shares) and the
    owner's masks of both kinds (the owner's mask is minus the sum, or the XOR, of the other n - 1).
    """
    k_mul, k_add, k_xor = randomness.split(key, 3)
    return {
        "mul": randomness.beaver_triple(k_mul, *SHAPES["mul"], jnp.multiply, name="beaver_triple", count=6),
        "masks_add": randomness.owner_masks(k_add, (512,)),
        "masks_xor": randomness.owner_masks(k_xor, (512,), xor=True),
    }


def deal_extra(key):
    """One party's shares of every other correlation, for :data:`EXTRA_PARTIES` parties."""
    keys = iter(randomness.split(key, 15))
    # A copy of the "mul" key, taken before it is used, for the same triple with another product.
    mul_key = next(keys)
    mul_key_copy = jax.random.clone(mul_key)
    last = sjax.comm.n_parties() - 1
    out = {
        "mul": randomness.beaver_triple(mul_key, *SHAPES["mul"], jnp.multiply, name="beaver_triple", count=6),
        # Same key, product 3ab: the free components and parties 1..n-1's shares of c cannot change.
        "mul_times_3": randomness.beaver_triple(
            mul_key_copy, *SHAPES["mul"], lambda a, b: jnp.uint64(3) * a * b, name="beaver_triple", count=6
        ),
        "matmul": randomness.beaver_triple(
            next(keys), *SHAPES["matmul"], ring.matmul, name="matmul_triple", count=1
        ),
        "conv": randomness.beaver_triple(
            next(keys), *SHAPES["conv"], conv_valid, name="conv_triple", count=1
        ),
        "square": randomness.square_pair(next(keys), (5,)),
        "and": randomness.and_triple(next(keys), (4,)),
        "dual": randomness.dual_random(next(keys), (4,)),
        "bit": randomness.random_bit(next(keys), (64,)),
        "masks_add_last": randomness.owner_masks(next(keys), (6,), owner=last),
        "masks_xor_last": randomness.owner_masks(next(keys), (6,), owner=last, xor=True),
    }
    for bits in TRUNCATION_BITS:
        out[f"truncation_{bits}"] = randomness.truncation_triple(next(keys), (64,), bits)
    out["beaver_trunc"] = randomness.beaver_with_truncation(
        next(keys), *SHAPES["matmul"], ring.matmul, 16, name="matmul_triple", count=1
    )
    out["conversion"] = randomness.conversion_material(next(keys), (3,), and_words=2, with_bit=True)
    return out


@functools.cache
def jitted_runner(body, n):
    """``body`` run for ``n`` parties under one ``jax.jit``, compiled once per (body, n)."""
    placeholder = jnp.zeros((n,), jnp.uint8)
    return jax.jit(lambda key: simulate.run(lambda _, k: body(k), (placeholder,), (key,)))


def deal(body, n, seed):
    """Every party's shares from ``body`` with ``jax.random.key(seed)``, as numpy arrays."""
    with jax.debug_key_reuse(True):
        return jax.tree.map(np.asarray, jitted_runner(body, n)(jax.random.key(seed)))


SEED = 7


@pytest.fixture(scope="module", params=PARTIES, ids=lambda n: f"n={n}")
def dealt(request):
    """(n, the core correlations dealt to n parties)."""
    # Module-scoped fixtures run outside the autouse fixture, so deal() turns the checker on itself.
    return request.param, deal(deal_core, request.param, SEED)


@pytest.fixture(scope="module")
def extra():
    """The other correlations, dealt to EXTRA_PARTIES parties."""
    return deal(deal_extra, EXTRA_PARTIES, SEED)


# -- check_key -------------------------------------------------------------------------------------------


def is_single_key(key) -> bool:
    return jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()


def key_words(key) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


def test_check_key_accepts_a_typed_key():
    checked = randomness.check_key(jax.random.key(0))
    assert is_single_key(checked)
    # Deterministic: the same seed gives the same key back.
    np.testing.assert_array_equal(key_words(checked), key_words(randomness.check_key(jax.random.key(0))))
    assert not np.array_equal(key_words(checked), key_words(randomness.check_key(jax.random.key(1))))


def test_check_key_accepts_a_legacy_key():
    raw = jax.random.PRNGKey(0)
    checked = randomness.check_key(raw)
    assert is_single_key(checked)
    # A legacy key is the typed key with the same data.
    typed = jax.random.wrap_key_data(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(key_words(checked), key_words(randomness.check_key(typed)))


def test_check_key_accepts_a_traced_key():
    @jax.jit
    def f(key, raw):
        return jax.random.key_data(randomness.check_key(key)), jax.random.key_data(randomness.check_key(raw))

    traced, traced_raw = f(jax.random.key(3), jax.random.PRNGKey(3))
    np.testing.assert_array_equal(traced, key_words(randomness.check_key(jax.random.key(3))))
    np.testing.assert_array_equal(traced_raw, traced)


@pytest.mark.parametrize(
    "value, named",
    [
        (0, "int"),
        (1.5, "float"),
        (None, "NoneType"),
        (np.zeros(2), "float64"),
        (jnp.zeros((2,), jnp.float32), "float32"),
        (jnp.zeros((3,), jnp.uint32), "shape (3,)"),
        (np.zeros((2, 3), np.uint32), "shape (2, 3)"),
        (jnp.zeros((2,), jnp.int32), "int32"),
    ],
    ids=["int", "float", "None", "float-numpy", "float-jax", "uint32-length-3", "uint32-2x3", "int32"],
)
def test_check_key_rejects_non_keys(value, named):
    with pytest.raises(TypeError, match="PRNG key") as info:
        randomness.check_key(value)
    assert named in str(info.value)


def test_check_key_rejects_a_share():
    x = sjax.ArithShare(jnp.zeros((2, 3), jnp.uint64))
    with pytest.raises(TypeError, match="ArithShare"):
        randomness.check_key(x)


def test_check_key_names_the_argument():
    with pytest.raises(TypeError, match="^seed must be a JAX PRNG key"):
        randomness.check_key(None, what="seed")


def test_check_key_rejects_a_batch_of_keys():
    with pytest.raises(ValueError, match=r"single PRNG key.*\(3,\)"):
        randomness.check_key(jax.random.split(jax.random.key(0), 3))


def test_check_key_rejects_a_batch_of_legacy_keys():
    # The docstring promises ValueError for "an array of several keys", legacy raw keys included.
    with pytest.raises(ValueError, match="single PRNG key"):
        randomness.check_key(jax.random.split(jax.random.PRNGKey(0), 3))


# -- plain helpers ---------------------------------------------------------------------------------------


def test_split_gives_independent_keys(keys):
    parts = randomness.split(keys(), 3)
    assert isinstance(parts, tuple) and len(parts) == 3
    data = {tuple(np.asarray(jax.random.key_data(k)).tolist()) for k in parts}
    assert len(data) == 3


def test_uniform_is_uint64_over_the_whole_ring(keys):
    u = np.asarray(randomness.uniform(keys(), (4096,)))
    assert u.dtype == np.uint64 and u.shape == (4096,)
    # Every bit, the top one included, is set about half the time.
    bits = (u[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.05)


# -- the correlations reconstruct exactly ----------------------------------------------------------------


def test_beaver_triple_elementwise(dealt):
    n, d = dealt
    a_sh, b_sh, c_sh = d["mul"]
    x_shape, y_shape = SHAPES["mul"]
    assert a_sh.shape == (n, *x_shape) and b_sh.shape == (n, *y_shape) and c_sh.shape == (n, 2, 3)
    assert a_sh.dtype == b_sh.dtype == c_sh.dtype == np.uint64
    a, b, c = add_open(a_sh), add_open(b_sh), add_open(c_sh)
    np.testing.assert_array_equal(c, (a * b) % MOD)


def test_beaver_triple_matrix(extra):
    a, b, c = (add_open(s) for s in extra["matmul"])
    assert c.shape == (2, 4)
    np.testing.assert_array_equal(c, np.dot(a, b) % MOD)


def test_beaver_triple_convolution(extra):
    a, b, c = (add_open(s) for s in extra["conv"])
    assert c.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(c, conv_reference(a, b))


def test_square_pair(extra):
    a, c = (add_open(s) for s in extra["square"])
    np.testing.assert_array_equal(c, (a * a) % MOD)


@pytest.mark.parametrize("bits", TRUNCATION_BITS)
def test_truncation_triple(extra, bits):
    r, r_low_shifted, r_msb = (add_open(s) for s in extra[f"truncation_{bits}"])
    np.testing.assert_array_equal(r_low_shifted, (r & LOW_63) >> bits)
    np.testing.assert_array_equal(r_msb, r >> 63)
    # Over 64 elements the top bit of a uniform r takes both values.
    assert set(r_msb.tolist()) == {0, 1}


def test_beaver_with_truncation(extra):
    (a_sh, b_sh, c_sh), (r_sh, low_sh, msb_sh) = extra["beaver_trunc"]
    a, b, c = add_open(a_sh), add_open(b_sh), add_open(c_sh)
    np.testing.assert_array_equal(c, np.dot(a, b) % MOD)
    # A truncation triple for the [2, 4] product, by 16 bits.
    r, low, msb = add_open(r_sh), add_open(low_sh), add_open(msb_sh)
    assert r.shape == (2, 4)
    np.testing.assert_array_equal(low, (r & LOW_63) >> 16)
    np.testing.assert_array_equal(msb, r >> 63)


def test_conversion_material(extra):
    r_bits, r_value, a, b, c, bit_word, bit_value = extra["conversion"]
    # r in both sharings.
    np.testing.assert_array_equal(xor_open(r_bits), add_open(r_value))
    # and_words = 2 AND-triple words per element, flattened: 3 * 2 words.
    assert a.shape == b.shape == c.shape == (EXTRA_PARTIES, 6)
    np.testing.assert_array_equal(xor_open(c), xor_open(a) & xor_open(b))
    # A bit in both sharings; every XOR share is a single bit.
    assert np.all(bit_word <= 1)
    np.testing.assert_array_equal(xor_open(bit_word), add_open(bit_value))


def test_and_triple(extra):
    a, b, c = (xor_open(s) for s in extra["and"])
    np.testing.assert_array_equal(c, a & b)


def test_dual_random(extra):
    words, arithmetic = extra["dual"]
    np.testing.assert_array_equal(xor_open(words), add_open(arithmetic))


def test_random_bit(extra):
    words, arithmetic = extra["bit"]
    # Every XOR share is a single bit, and the two sharings hold the same bit.
    assert np.all(words <= 1)
    bit = xor_open(words)
    np.testing.assert_array_equal(bit, add_open(arithmetic))
    assert set(bit.tolist()) == {0, 1}


def test_owner_masks_add_up_to_zero(dealt, extra):
    n, d = dealt
    assert d["masks_add"].shape == (n, 512) and d["masks_add"].dtype == np.uint64
    assert np.all(add_open(d["masks_add"]) == 0)
    assert np.all(add_open(extra["masks_add_last"]) == 0)  # owner: the last party


def test_owner_masks_xor_to_zero(dealt, extra):
    n, d = dealt
    assert np.all(xor_open(d["masks_xor"]) == 0)
    assert np.all(xor_open(extra["masks_xor_last"]) == 0)


def test_owner_masks_are_uniform(dealt):
    n, d = dealt
    for name in ("masks_add", "masks_xor"):
        for party, mask in enumerate(d[name]):
            # Every party's mask, the owner's included, looks uniform: each bit set about half the time.
            bits = (mask[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
            assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.15), (name, party)


def test_parties_hold_different_shares(dealt, extra):
    n, d = dealt
    shares_of_a = [d["mul"][0], d["masks_add"]]
    shares_of_a += [extra[name][0] for name in ("matmul", "conv", "square", "and")]
    for shares in shares_of_a:
        assert len({shares[i].tobytes() for i in range(len(shares))}) == len(shares)
        assert all(np.count_nonzero(row) > 0 for row in shares)


# -- the dealer corrects party 0 only --------------------------------------------------------------------


def test_dealer_correction_reaches_party_0_only(extra):
    (a1, b1, c1), (a2, b2, c2) = extra["mul"], extra["mul_times_3"]
    # Same key: every party expands the same shares of a, b and c from its seed ...
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(c1[1:], c2[1:])
    # ... and only party 0's share of c, corrected by the dealer, depends on what c should be.
    assert np.all(c1[0] != c2[0])
    np.testing.assert_array_equal(add_open(c2), 3 * add_open(c1) % MOD)


@pytest.mark.parametrize(
    "make, dealer_bytes, correlations",
    [
        (
            lambda k: randomness.beaver_triple(k, (2, 3), (3,), jnp.multiply, name="beaver_triple", count=6),
            8 * 6,
            {"beaver_triple": 6},
        ),
        (
            lambda k: randomness.beaver_triple(k, (2, 3), (3, 4), ring.matmul, name="matmul_triple", count=1),
            8 * 2 * 4,
            {"matmul_triple": 1},
        ),
        (lambda k: randomness.square_pair(k, (5,)), 8 * 5, {"square_pair": 5}),
        (lambda k: randomness.truncation_triple(k, (5,), 16), 16 * 5, {"truncation_triple": 5}),
        (lambda k: randomness.and_triple(k, (5,)), 8 * 5, {"and_triple": 64 * 5}),
        (lambda k: randomness.dual_random(k, (5,)), 8 * 5, {"dual_random": 5}),
        (lambda k: randomness.random_bit(k, (5,)), 8 * 5, {"random_bit": 5}),
        (lambda k: randomness.owner_masks(k, (5,)), 0, {}),
        (
            lambda k: randomness.beaver_with_truncation(
                k, (5,), (5,), jnp.multiply, 16, name="beaver_triple", count=5
            ),
            8 * 5 + 16 * 5,
            {"beaver_triple": 5, "truncation_triple": 5},
        ),
        (
            lambda k: randomness.conversion_material(k, (5,), and_words=2, with_bit=True),
            8 * 5 + 8 * 10 + 8 * 5,  # r's value, the AND words, the bit's value
            {"dual_random": 5, "and_triple": 64 * 10, "random_bit": 5},
        ),
    ],
    ids=["beaver", "matmul", "square", "truncation", "and", "dual", "bit", "masks", "with-trunc", "convert"],
)
def test_one_offline_message_and_nothing_online(make, dealer_bytes, correlations, keys):
    c = sjax.cost(lambda k: run_parties(make, 3, k))(keys())
    # Only the derived components travel, once, from the dealer to party 0.
    assert c == sjax.Cost(dealer_bytes=dealer_bytes, correlations=correlations)


# -- keys: determinism and the reuse checker -------------------------------------------------------------


def test_same_key_gives_identical_shares(dealt):
    n, d = dealt
    again = deal(deal_core, n, SEED)
    for name in d:
        for first, second in zip(jax.tree.leaves(d[name]), jax.tree.leaves(again[name]), strict=True):
            np.testing.assert_array_equal(first, second, err_msg=name)


def test_different_key_gives_fresh_shares(dealt):
    n, d = dealt
    other = deal(deal_core, n, SEED + 1)
    for name in d:
        for first, second in zip(jax.tree.leaves(d[name]), jax.tree.leaves(other[name]), strict=True):
            # Fresh uniform words: no element repeats.
            assert np.all(first != second), name


def test_eager_run_passes_the_checker_and_matches_jit(keys):
    # The autouse fixture has jax.debug_key_reuse(True) on; an eager run checks every op as it goes.
    def body(key):
        return randomness.beaver_triple(key, (3,), (3,), jnp.multiply, name="beaver_triple", count=3)

    key = keys()
    copy = jax.random.clone(key)
    a, b, c = run_parties(body, 3, key)
    np.testing.assert_array_equal(add_open(c), add_open(a) * add_open(b) % MOD)
    for eager, jitted in zip((a, b, c), run_parties(body, 3, copy, jit=True), strict=True):
        np.testing.assert_array_equal(eager, jitted)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_reuse_checker_is_on(jit, keys):
    # The control for the tests that rely on the checker: a body that draws twice from its key is caught.
    def reuses(key):
        return randomness.uniform(key, (3,)), randomness.uniform(key, (3,))

    with pytest.raises(jax.errors.KeyReuseError):
        run_parties(reuses, 2, keys(), jit=jit)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: randomness.owner_masks(k, (3,)),
        lambda k: randomness.square_pair(k, (3,)),
        lambda k: randomness.beaver_triple(k, (3,), (3,), jnp.multiply, name="beaver_triple", count=3),
    ],
    ids=["owner_masks", "square_pair", "beaver_triple"],
)
def test_a_correlation_consumes_its_key(make, keys):
    # Each function must use up its key, so that the checker catches a second correlation from the same
    # key (which would hand out the very same masks twice).
    def reuses(key):
        return make(key), make(key)

    with pytest.raises(jax.errors.KeyReuseError):
        run_parties(reuses, 2, keys(), jit=True)
