"""Tests for ``sjax.truncate``: dividing a secret by a power of two.

The protocol's claim: for a secret ring value ``|x| < 2^62`` and any number of parties, the result is
exactly ``floor(x / 2^b)`` or ``floor(x / 2^b) + 1`` (stochastic rounding, the second with probability
``(x mod 2^b) / 2^b``, so the expectation is ``x / 2^b``), with no other failure. The tests check that
exactly, on ring integers (shares with ``frac_bits=0``, reconstructed modulo 2^64 in numpy), on many values up
to the edge of the domain, for 2, 3 and 5 parties, eagerly and under ``jax.jit``; they check that the rounding
is unbiased; and they show why the protocol exists: the naive local truncation (each party shifts its own
share) is wrong for three parties.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sjax
from conftest import PARTIES

DOMAIN = 2**62  # truncation is exact for ring values |x| < 2^62
SAMPLES = 1024  # one array shape for the whole file: each new shape costs a compilation


def _ring_value(s):
    """The secret as exact two's-complement ring integers: the shares summed modulo 2^64, in numpy."""
    return np.asarray(np.asarray(s.shares).sum(axis=0, dtype=np.uint64)).view(np.int64)


def _edge_values():
    """Ring values of SAMPLES elements: edges of the domain, exact multiples, and random magnitudes."""
    edges = np.array(
        [0, 1, -1, DOMAIN - 1, -(DOMAIN - 1), 2**61, -(2**61), 2**16, -(2**16), 2**16 - 1, -(2**16) + 1,
         2**32 + 2**15, -(2**45) * 2**16, (2**45 - 1) * 2**16 + 12345, DOMAIN - 2**16, -DOMAIN + 2**16],
        dtype=np.int64,
    )
    rng = np.random.default_rng(62)
    n_random = SAMPLES - edges.size
    # Log-uniform magnitudes from 1 to 2^62, so that every size up to the edge is well represented, and a
    # quarter of the values within 2^-8 of the edge.
    magnitudes = np.exp2(rng.uniform(0.0, 62.0, n_random)).astype(np.float64)
    magnitudes[: n_random // 4] = rng.uniform(1 - 2**-8, 1, n_random // 4) * DOMAIN
    values = np.minimum(magnitudes, np.float64(np.nextafter(2.0**62, 0))).astype(np.int64)
    values = values * rng.choice(np.array([-1, 1], dtype=np.int64), n_random)
    out = np.concatenate([edges, values])
    assert np.all(np.abs(out) < DOMAIN)
    return out


def _share_ring(values, key, n):
    """Shares ring integers exactly: with frac_bits=0 an integer is its own ring value."""
    s = sjax.share(np.asarray(values, dtype=np.int64), key, n_parties=n, frac_bits=0)
    np.testing.assert_array_equal(_ring_value(s), values)
    return s


def _assert_floor_or_next(result, x, bits):
    got = _ring_value(result)
    floor = np.asarray(x, dtype=np.int64) >> bits  # arithmetic shift: floor division by 2^bits
    up = got - floor
    bad = np.flatnonzero((up != 0) & (up != 1))
    first = bad[:3]
    assert bad.size == 0, f"{bad.size} wrong results, e.g. x={x[first]} got {got[first]} want {floor[first]}"
    # A value that is an exact multiple of 2^bits is never rounded up.
    exact = (np.asarray(x) & ((1 << bits) - 1)) == 0
    assert np.all(up[exact] == 0)


_jit_truncate = jax.jit(sjax.truncate, static_argnames=("bits",))


# -- correctness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("n", PARTIES)
def test_truncation_is_floor_or_floor_plus_one_up_to_the_domain_edge(keys, n, use_jit):
    x = _edge_values()
    xs = _share_ring(x, keys(), n)
    truncate = _jit_truncate if use_jit else sjax.truncate
    result = truncate(xs, keys(), bits=16)
    assert isinstance(result, sjax.ArithShare)
    assert (result.n_parties, result.shape, result.frac_bits) == (n, (SAMPLES,), 0)
    _assert_floor_or_next(result, x, 16)


@pytest.mark.parametrize("bits", [1, 8, 31, 47, 61])
def test_truncation_by_any_number_of_bits(keys, bits):
    x = _edge_values()
    _assert_floor_or_next(sjax.truncate(_share_ring(x, keys(), 3), keys(), bits=bits), x, bits)


def test_truncation_by_zero_bits_is_the_identity(keys):
    xs = _share_ring(_edge_values(), keys(), 3)
    assert np.array_equal(np.asarray(sjax.truncate(xs, keys(), bits=0).shares), np.asarray(xs.shares))


@pytest.mark.parametrize("frac_bits", [8, 16, 20])
def test_default_truncation_divides_by_two_to_the_frac_bits(keys, frac_bits):
    rng = np.random.default_rng(frac_bits)
    x = rng.uniform(-1000, 1000, SAMPLES)
    xs = sjax.share(x, keys(), n_parties=3, frac_bits=frac_bits)
    out = np.asarray(sjax.reveal(sjax.truncate(xs, keys())))
    # The input encoding is off by at most 2^-(f+1), divided by 2^f; the truncation by less than one ulp.
    ulp = 2.0**-frac_bits
    np.testing.assert_array_less(np.abs(out - x * ulp), ulp + 2.0 ** -(2 * frac_bits + 1))


@pytest.mark.parametrize("n", PARTIES)
def test_products_at_the_edge_of_the_domain(keys, n):
    # mul's domain with f = 16 is |x y| < 2^30: the product carries 32 fractional bits, so its ring value
    # is just below 2^62 in magnitude here, right at the edge of the truncation's domain.
    rng = np.random.default_rng(n)
    x = rng.choice([-1.0, 1.0], SAMPLES) * rng.uniform(32000, 32767.99, SAMPLES)
    y = rng.choice([-1.0, 1.0], SAMPLES) * rng.uniform(32000, 32767.99, SAMPLES)
    assert np.max(np.abs(x * y)) < 2**30
    xs, ys = sjax.share(x, keys(), n_parties=n), sjax.share(y, keys(), n_parties=n)
    out = np.asarray(sjax.reveal(sjax.mul(xs, ys, keys())))
    # Error budget: (|x| + |y|) 2^-17 for the input encodings, 2^-34, and < 2^-16 for the truncation.
    bound = (np.abs(x) + np.abs(y)) * 2.0**-17 + 2.0**-34 + 2.0**-16 + np.abs(x * y) * 2.0**-50
    assert np.all(np.abs(out - x * y) <= bound)


# -- property test ---------------------------------------------------------------------------------


# The function-scoped `keys` fixture is an endless stream: every example draws fresh keys from it.
@settings(
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.integers(-(DOMAIN - 1), DOMAIN - 1), min_size=1, max_size=16),
    bits=st.integers(1, 61),
    n=st.sampled_from(PARTIES),
)
def test_truncation_property(keys, values, bits, n):
    # The drawn values are padded with zeros to the file's one shape, so no example compiles anything new.
    x = np.zeros(SAMPLES, dtype=np.int64)
    x[: len(values)] = values
    _assert_floor_or_next(sjax.truncate(_share_ring(x, keys(), n), keys(), bits=bits), x, bits)


# -- stochastic rounding is unbiased ---------------------------------------------------------------


def test_rounding_is_unbiased(keys):
    # Eight values with different remainders mod 2^16, each repeated 128 times, truncated with 16 different
    # keys: 2048 independent roundings per value (every element has its own mask r). The result is
    # floor(x / 2^16) + u, and u must be 1 with probability p = (x mod 2^16) / 2^16, so the mean of many
    # results is x / 2^16. The tolerance is 5 standard errors of the Bernoulli mean. Truncating to the floor
    # (p = 0) or to the nearest value (p in {0, 1}) would be off by 0.25 or more for p = 0.25, 0.5, 0.75,
    # which is over 20 standard errors.
    bits, repeats, n_keys = 16, SAMPLES // 8, 16
    remainders = np.array([0, 1, 2**14, 2**15, 3 * 2**14, 2**16 - 1, 12345, 54321], dtype=np.int64)
    base = np.array([0, 7, -3, 2**40, -(2**40), 123456789, -1, 2**45], dtype=np.int64)
    x_values = base * 2**16 + remainders
    x = np.repeat(x_values, repeats)
    xs = _share_ring(x, keys(), 3)
    ups = np.stack([_ring_value(sjax.truncate(xs, keys(), bits=bits)) - (x >> bits) for _ in range(n_keys)])
    ups = ups.reshape(n_keys, 8, repeats)
    assert set(np.unique(ups)) <= {0, 1}
    frequency = ups.mean(axis=(0, 2))
    p = remainders / 2.0**bits
    standard_error = np.sqrt(p * (1 - p) / (repeats * n_keys))
    # The mean result is floor(x / 2^16) + frequency, so this is "mean of the results = x / 2^16" to within
    # 5 standard errors (exactly, for p = 0: an exact multiple is never rounded up).
    np.testing.assert_array_less(np.abs(frequency - p), 5 * standard_error + 1e-12)


# -- why the protocol exists -----------------------------------------------------------------------


def _naive_local_truncation(s, bits):
    """What SecureML / CrypTen do: every party arithmetic-shifts its own share, no communication."""
    signed = np.asarray(s.shares).view(np.int64)
    return np.asarray((signed >> bits).astype(np.uint64).sum(axis=0, dtype=np.uint64)).view(np.int64)


def test_naive_local_truncation_is_wrong_for_three_parties_and_the_protocol_is_right(keys):
    bits = 16
    x = np.random.default_rng(3).integers(-(2**40), 2**40, SAMPLES)  # |x| <= 2^40: far inside the domain
    floor = x >> bits
    # Two parties: the signed shares x - m and m add up to x without wrapping unless m lands within |x| of
    # +-2^63 (probability about |x| / 2^64 < 2^-23 per element), so shifting each share is right to within
    # the one unit that two floors can lose.
    s2 = _share_ring(x, keys(), 2)
    assert np.all(np.abs(_naive_local_truncation(s2, bits) - floor) <= 1)
    # Three parties: three uniform signed shares add up to x + w 2^64 with w in {-1, 0, 1}, and w != 0 for
    # about a quarter of the elements. Shifting each share then leaves w 2^(64 - bits) in the result: an
    # error of about 2^48, i.e. garbage, for many elements.
    s3 = _share_ring(x, keys(), 3)
    naive_error = _naive_local_truncation(s3, bits) - floor
    wrong = np.abs(naive_error) > 2
    assert wrong.mean() > 0.1
    assert np.all(np.abs(naive_error[wrong]) >= 2 ** (64 - bits) - 4)
    # The protocol, on the very same shares, is right everywhere.
    _assert_floor_or_next(sjax.truncate(s3, keys(), bits=bits), x, bits)


# -- bad input and keys ----------------------------------------------------------------------------


@pytest.fixture
def small_share(keys):
    return _share_ring(_edge_values(), keys(), 2)


@pytest.mark.parametrize("bits", [-1, 62, 64, 100])
def test_bits_out_of_range_is_a_value_error(keys, small_share, bits):
    with pytest.raises(ValueError, match=r"bits must be in \[0, 61\]"):
        sjax.truncate(small_share, keys(), bits=bits)


@pytest.mark.parametrize("bits", [16.0, "16", True])
def test_non_int_bits_is_a_type_error(keys, small_share, bits):
    with pytest.raises(TypeError, match="bits must be an int"):
        sjax.truncate(small_share, keys(), bits=bits)


def test_truncating_a_non_share_is_a_type_error(keys):
    with pytest.raises(TypeError, match="truncate takes an ArithShare"):
        sjax.truncate(np.arange(4), keys())


@pytest.mark.parametrize(
    "bad_key", [0, jnp.ones(2), jnp.zeros(4, jnp.uint32)], ids=["int", "float-array", "uint32-len4"]
)
def test_a_non_key_is_a_type_error(small_share, bad_key):
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        sjax.truncate(small_share, bad_key)


def test_a_batch_of_keys_is_a_value_error(keys, small_share):
    with pytest.raises(ValueError, match="single PRNG key"):
        sjax.truncate(small_share, jax.random.split(keys(), 4))


def test_truncating_twice_with_the_same_key_is_caught_by_the_reuse_checker(keys, small_share):
    # Both truncations would open x + r with the same r: the difference of the opened values is x - y.
    key = keys()
    sjax.truncate(small_share, key, bits=16)
    with pytest.raises(jax.errors.KeyReuseError):
        sjax.truncate(small_share, key, bits=16)
