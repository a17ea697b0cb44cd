"""Tests for sharing and revealing: ``sjax.share`` and ``sjax.reveal``.

Covers the round trip for every number of parties (eagerly and under ``jax.jit``) and several fixed-point
precisions, determinism in the key, the statistical claim that one party's share is uniform over Z_2^64
whatever the secret, and the errors raised for bad input (keys, party counts, precisions, NaN, values outside
the representable range, things that are not plaintext or not shares).

Fixed point with ``f`` fractional bits encodes ``x`` as ``round(x * 2**f)``, so a round trip is off by at most
half a unit in the last place, ``2**-(f + 1)``; integers round-trip exactly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax
from conftest import PARTIES

# One shape for most tests here (and in test_arith.py and test_truncation.py): compiling the sharing of a
# new shape for a new number of parties dominates the run time, so the tests reuse this one.
SHAPE = (1024,)


def _values(seed=0, scale=1000.0):
    """Floats of SHAPE with a spread of magnitudes (log-uniform from 1e-6 to ``scale``) and signs,
    including an exact 0, a tiny value and ``-scale``."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], SHAPE) * np.exp(rng.uniform(np.log(1e-6), np.log(scale), SHAPE))
    x[:3] = 0.0, 1e-6, -scale
    return x


def _ring_value(s):
    """The secret as exact two's-complement ring integers: the shares summed modulo 2^64, in numpy."""
    return np.asarray(np.asarray(s.shares).sum(axis=0, dtype=np.uint64)).view(np.int64)


_jit_share = jax.jit(sjax.share, static_argnames=("n_parties", "frac_bits"))


# -- round trip -----------------------------------------------------------------------------------


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("n", PARTIES)
def test_share_reveal_round_trip(keys, n, use_jit):
    x = _values()
    share = _jit_share if use_jit else sjax.share
    s = share(x, keys(), n_parties=n)
    assert isinstance(s, sjax.ArithShare)
    assert s.shares.shape == (n, *SHAPE) and s.shares.dtype == jnp.uint64
    assert (s.n_parties, s.shape, s.frac_bits) == (n, SHAPE, 16)
    # Encoding rounds to the nearest multiple of 2^-16: error at most 2^-17, and nothing else is lost.
    out = sjax.reveal(s)
    assert out.dtype == jnp.float64 and out.shape == SHAPE
    np.testing.assert_array_less(np.abs(np.asarray(out) - x), 2.0**-17 + 1e-12)
    # The revealed value is exactly the decoded ring value: reveal adds no error of its own.
    np.testing.assert_array_equal(np.asarray(out), _ring_value(s) * 2.0**-16)


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("n", PARTIES)
def test_reveal_to_one_party_in_simulation(keys, n, use_jit):
    # reveal(s, to=i) in the simulate runner (jax.vmap, where a ppermute must move every party's slot).
    x = _values()
    s = sjax.share(x, keys(), n_parties=n)
    for receiver in range(n):
        reveal = functools.partial(sjax.reveal, to=receiver)
        reveal = jax.jit(reveal) if use_jit else reveal
        np.testing.assert_array_equal(np.asarray(reveal(s)), np.asarray(sjax.reveal(s)))


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 20, 30])
def test_round_trip_error_is_half_an_ulp_for_every_precision(keys, frac_bits):
    # Keep |x| well inside the range 2^(63 - f), which is only 2^33 for f = 30.
    x = _values(seed=frac_bits, scale=1000.0)
    s = sjax.share(x, keys(), n_parties=3, frac_bits=frac_bits)
    assert s.frac_bits == frac_bits
    err = np.abs(np.asarray(sjax.reveal(s)) - x)
    np.testing.assert_array_less(err, 2.0 ** -(frac_bits + 1) + 1e-12)
    # The encoding is round-to-nearest: the ring value is the nearest integer to x * 2^f (ties aside).
    np.testing.assert_array_equal(_ring_value(s), np.round(x * 2.0**frac_bits).astype(np.int64))


@pytest.mark.parametrize("frac_bits", [0, 8, 16])
def test_integers_and_booleans_round_trip_exactly(keys, frac_bits):
    ints = np.random.default_rng(frac_bits).integers(-(2**30), 2**30, SHAPE)
    ints[:4] = 0, 1, -1, -(2**30)
    bools = ints % 2 == 0
    for value, expected in ((ints, ints), (ints.astype(np.int32), ints), (bools, bools)):
        s = sjax.share(value, keys(), n_parties=3, frac_bits=frac_bits)
        np.testing.assert_array_equal(sjax.reveal(s), expected)


def test_shapes_scalars_lists_and_float32_are_accepted(keys):
    assert sjax.reveal(sjax.share(2.5, keys())) == 2.5
    assert sjax.share(2.5, keys()).shape == ()
    x = _values()[:24].reshape(2, 3, 4)
    s = sjax.share(x, keys(), n_parties=3)
    assert s.shape == (2, 3, 4) and s.shares.shape == (3, 2, 3, 4)
    np.testing.assert_array_less(np.abs(np.asarray(sjax.reveal(s)) - x), 2.0**-17 + 1e-12)
    nested_list = x.round(2).tolist()
    expected = np.round(np.array(nested_list) * 2**16) / 2**16
    np.testing.assert_array_equal(sjax.reveal(sjax.share(nested_list, keys(), n_parties=3)), expected)
    x32 = _values().astype(np.float32)
    assert np.all(np.abs(np.asarray(sjax.reveal(sjax.share(x32, keys()))) - x32) <= 2.0**-17)


# -- determinism ----------------------------------------------------------------------------------


def test_same_key_gives_bit_identical_shares(keys):
    x = _values()
    key = keys()
    key_copy = jax.random.clone(key)  # the same key material, a separate key for the reuse checker
    a = sjax.share(x, key, n_parties=3)
    b = sjax.share(x, key_copy, n_parties=3)
    assert np.array_equal(np.asarray(a.shares), np.asarray(b.shares))


def test_same_key_gives_the_same_shares_eagerly_and_under_jit(keys):
    key = keys()
    key_copy = jax.random.clone(key)
    a = sjax.share(_values(), key, n_parties=3)
    b = _jit_share(_values(), key_copy, n_parties=3)
    assert np.array_equal(np.asarray(a.shares), np.asarray(b.shares))


def test_different_keys_give_different_shares_of_the_same_value(keys):
    x = _values()
    a = sjax.share(x, keys(), n_parties=3)
    b = sjax.share(x, keys(), n_parties=3)
    # Every share of every party is fresh: an equal 64-bit word by chance has probability 2^-64.
    assert not np.any(np.asarray(a.shares) == np.asarray(b.shares))
    np.testing.assert_array_equal(sjax.reveal(a), sjax.reveal(b))


# -- uniformity -----------------------------------------------------------------------------------

UNIFORMITY_SAMPLES = 1 << 14


def _uniformity_failures(a, b):
    """Reasons why the uint64 samples ``a`` and ``b`` do not look like two uniform samples of Z_2^64.

    Checks (sized for N = 16384 samples each; every bound is at least 6 standard deviations, so with the
    fixed key a spurious failure is out of the question, and a real one is far outside it):

    * each of the 64 bit positions is 1 with frequency 0.5 +- 0.03 in ``a`` and in ``b`` (sd 0.0039);
    * the top 8 bits of ``a`` and of ``b`` each follow the uniform law on 256 values (chi-square with 255
      degrees of freedom: mean 255, sd 22.6, bound 400);
    * the top 8 bits of ``a`` and ``b`` follow the same law (two-sample chi-square, same bound).
    """
    failures = []
    positions = np.arange(64, dtype=np.uint64)
    for name, sample in (("a", a), ("b", b)):
        freq = ((sample[:, None] >> positions) & np.uint64(1)).mean(axis=0)
        bad = np.flatnonzero(np.abs(freq - 0.5) > 0.03)
        if bad.size:
            failures.append(f"bit frequencies of {name} at positions {bad.tolist()}: {freq[bad].round(3)}")
        hist = np.bincount((sample >> np.uint64(56)).astype(np.int64), minlength=256)
        expected = sample.size / 256
        chi2 = ((hist - expected) ** 2 / expected).sum()
        if chi2 > 400:
            failures.append(f"top-8-bit histogram of {name} is not uniform: chi2 = {chi2:.0f}")
    ha = np.bincount((a >> np.uint64(56)).astype(np.int64), minlength=256)
    hb = np.bincount((b >> np.uint64(56)).astype(np.int64), minlength=256)
    both = (ha + hb) > 0
    chi2 = ((ha - hb)[both] ** 2 / (ha + hb)[both]).sum()
    if chi2 > 400:
        failures.append(f"top-8-bit histograms of a and b differ: two-sample chi2 = {chi2:.0f}")
    return failures


def test_uniformity_check_detects_unmasked_and_weakly_masked_shares():
    """The statistic used below has power: it rejects sharings that are not masked over the whole ring.

    Without masking, the party holding the secret holds its encoding (all zeros for the secret 0, a fixed
    word for 1e9) and every bit frequency is 0 or 1. With masks of 32 bits only, the top bits of a share
    are constant (0 or all ones) and depend on the secret's sign and size.
    """
    rng = np.random.default_rng(0)
    zero = np.zeros(UNIFORMITY_SAMPLES, dtype=np.uint64)
    big = np.full(UNIFORMITY_SAMPLES, np.int64(round(1e9 * 2**16)), dtype=np.int64).view(np.uint64)
    assert _uniformity_failures(zero, big)
    mask32 = rng.integers(0, 2**32, size=UNIFORMITY_SAMPLES, dtype=np.uint64)
    assert _uniformity_failures(zero - mask32, big - mask32)
    # And it accepts genuinely uniform words.
    uniform = rng.integers(0, 2**64, size=(2, UNIFORMITY_SAMPLES), dtype=np.uint64)
    assert _uniformity_failures(uniform[0], uniform[1]) == []


@pytest.mark.parametrize("n", [2, 3])
def test_one_party_share_has_the_same_uniform_law_for_very_different_secrets(keys, n):
    # Many independent sharings of the secret 0 and of the secret 1e9 (one per array element, each with
    # its own masks; 16 keys times SHAPE elements). Whatever one party sees must be uniform and must not
    # depend on the secret. Party 0 is the input owner (secret minus the other masks); the last party holds
    # a plain mask; for n = 3 the first n - 1 parties together must also learn nothing, so their summed
    # shares must be uniform too.
    def many_sharings(value):
        count = UNIFORMITY_SAMPLES // SHAPE[0]
        shares = [sjax.share(np.full(SHAPE, value), keys(), n_parties=n) for _ in range(count)]
        np.testing.assert_array_equal(sjax.reveal(shares[0]), np.full(SHAPE, value))
        return np.concatenate([np.asarray(s.shares) for s in shares], axis=1)

    za, zb = many_sharings(0.0), many_sharings(1e9)
    views = {"party 0": (za[0], zb[0]), f"party {n - 1}": (za[-1], zb[-1])}
    if n > 2:
        together = (za[:-1].sum(axis=0, dtype=np.uint64), zb[:-1].sum(axis=0, dtype=np.uint64))
        views["parties 0..n-2 together"] = together
    for view, (a, b) in views.items():
        assert _uniformity_failures(a, b) == [], view


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_parties", [1, 0, -3])
def test_fewer_than_two_parties_is_a_value_error(keys, n_parties):
    with pytest.raises(ValueError, match="n_parties must be at least 2"):
        sjax.share(1.0, keys(), n_parties=n_parties)


@pytest.mark.parametrize("n_parties", [2.0, "3", True, None])
def test_non_int_party_count_is_a_type_error(keys, n_parties):
    with pytest.raises(TypeError, match="n_parties must be an int"):
        sjax.share(1.0, keys(), n_parties=n_parties)


def test_numpy_int_party_count_is_accepted(keys):
    assert sjax.share(1.0, keys(), n_parties=np.int64(3)).n_parties == 3


@pytest.mark.parametrize("frac_bits", [-1, 31, 64])
def test_frac_bits_out_of_range_is_a_value_error(keys, frac_bits):
    with pytest.raises(ValueError, match="frac_bits must be in"):
        sjax.share(1.0, keys(), frac_bits=frac_bits)


@pytest.mark.parametrize("frac_bits", [16.0, "16", None])
def test_non_int_frac_bits_is_a_type_error(keys, frac_bits):
    with pytest.raises(TypeError, match="frac_bits must be an int"):
        sjax.share(1.0, keys(), frac_bits=frac_bits)


@pytest.mark.parametrize(
    "value",
    [np.nan, np.inf, -np.inf, np.float32(np.nan), np.array([1.0, 2.0, np.nan]), np.array([[0.0], [-np.inf]])],
    ids=["nan", "inf", "-inf", "nan32", "nan-in-array", "-inf-in-array"],
)
def test_nan_and_infinity_cannot_be_shared(keys, value):
    with pytest.raises(ValueError, match="NaN or infinite"):
        sjax.share(value, keys())


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 30])
@pytest.mark.parametrize("sign", [1, -1])
def test_floats_at_or_beyond_the_range_are_rejected(keys, frac_bits, sign):
    bound = 2.0 ** (63 - frac_bits)
    for value in (sign * bound, sign * 2 * bound, np.array([0.0, sign * bound * 1.5])):
        with pytest.raises(ValueError, match=f"outside the representable range.*frac_bits={frac_bits}"):
            sjax.share(value, keys(), frac_bits=frac_bits)


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 30])
@pytest.mark.parametrize("sign", [1, -1])
def test_largest_float_inside_the_range_round_trips_exactly(keys, frac_bits, sign):
    # The float just below 2^(63 - f) encodes to 2^63 - 2^10 (53-bit mantissa): representable, no wrap.
    value = sign * np.nextafter(2.0 ** (63 - frac_bits), 0.0)
    s = sjax.share(value, keys(), frac_bits=frac_bits)
    assert _ring_value(s) == int(value * 2.0**frac_bits)
    assert float(sjax.reveal(s)) == value


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 30])
def test_integer_range_boundary(keys, frac_bits):
    # Documented range: |x| < 2^(63 - f). The largest integers inside it round-trip exactly; the first
    # ones outside it are rejected.
    top = 2 ** (63 - frac_bits)
    for value in (top - 1, -(top - 1)):
        s = sjax.share(np.int64(value), keys(), frac_bits=frac_bits)
        assert int(_ring_value(s)) == value << frac_bits
    for value in (top, -top):
        if -(2**63) <= value < 2**63:
            with pytest.raises(ValueError, match="outside the representable range"):
                sjax.share(np.int64(value), keys(), frac_bits=frac_bits)


def test_python_int_beyond_int64_is_rejected_as_out_of_range(keys):
    with pytest.raises(ValueError, match="outside the representable range"):
        sjax.share(2**70, keys())


def test_sharing_a_share_is_a_type_error(keys):
    s = sjax.share(_values(), keys())
    with pytest.raises(TypeError, match="already shared"):
        sjax.share(s, keys())


@pytest.mark.parametrize(
    "value", ["abc", 1j, np.array([1 + 2j]), object()], ids=["str", "complex", "complex-array", "object"]
)
def test_non_numeric_values_are_type_errors(keys, value):
    with pytest.raises(TypeError, match="complex|numeric"):
        sjax.share(value, keys())


@pytest.mark.parametrize(
    "value", [np.ones(3), jnp.ones(3), 1.0, None, [1.0]], ids=["numpy", "jax", "float", "none", "list"]
)
def test_reveal_of_a_non_share_is_a_type_error(value):
    with pytest.raises(TypeError, match="reveal takes an ArithShare or a BinShare"):
        sjax.reveal(value)


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_key",
    [0, 1.5, np.ones(2), jnp.ones(2, jnp.float32), jnp.zeros(3, jnp.uint32), jnp.uint32(7), "key"],
    ids=["int", "float", "float-array", "float32-array", "uint32-len3", "uint32-scalar", "str"],
)
def test_a_non_key_is_a_type_error(bad_key):
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        sjax.share(1.0, bad_key)


def test_a_batch_of_keys_is_a_value_error(keys):
    with pytest.raises(ValueError, match="single PRNG key.*shape \\(2,\\)"):
        sjax.share(1.0, jax.random.split(keys(), 2))
    # A batch of legacy raw keys, uint32[3, 2].
    with pytest.raises(ValueError, match="single PRNG key.*shape \\(3, 2\\)"):
        sjax.share(1.0, jax.random.split(jax.random.PRNGKey(0), 3))


def test_a_legacy_raw_key_is_accepted():
    legacy = jax.random.PRNGKey(0)
    assert legacy.dtype == jnp.uint32 and legacy.shape == (2,)
    s = sjax.share(_values(), legacy, n_parties=3)
    np.testing.assert_array_less(np.abs(np.asarray(sjax.reveal(s)) - _values()), 2.0**-17 + 1e-12)
    # The raw key is the typed key with the same data.
    typed = sjax.share(_values(), jax.random.wrap_key_data(jax.random.PRNGKey(0)), n_parties=3)
    assert np.array_equal(np.asarray(s.shares), np.asarray(typed.shares))


def test_sharing_twice_with_the_same_key_is_caught_by_the_reuse_checker(keys):
    # Two sharings under one key use the same masks: their difference reveals x - y to party 0. The autouse
    # jax.debug_key_reuse(True) checker must flag the second use.
    key = keys()
    sjax.share(_values(0), key)
    with pytest.raises(jax.errors.KeyReuseError):
        sjax.share(_values(1), key)
