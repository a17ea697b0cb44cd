"""Tests for binary sharing, :mod:`sjax.primitives.binary`.

Functions under test: ``sjax.bitwise_and``, ``sjax.a2b``, ``sjax.b2a_bits``, ``sjax.msb`` and, through them
and directly under :func:`sjax.parallel.simulate.run`, the SPMD bodies ``and_many_body`` and
``add_public_body`` (the Kogge–Stone adder).

Everything here is exact, so results are compared bit for bit: a BinShare is opened by XOR-ing the
parties' words, an ArithShare by summing its shares modulo 2^64 (both by the test itself, in numpy).

* ``a2b`` must reveal exactly ``sjax.ring.encode`` of the secret: reals at 16 fractional bits, and raw ring
  integers over the whole int64 range (shared with ``frac_bits=0``), including the carries of ``-1``,
  ``±(2**63 - 1)`` and random words.
* ``add_public_body`` must add modulo 2^64: a carry chain of every length 1..64 (``c = 2**k - 1``,
  ``r = 1``), chains that start in the middle of the word, the wrap-around ``(2**64 - 1) + 1 = 0``, and
  random words.
* ``msb`` of negative, positive and zero values, the smallest steps ``±2**-16`` and both ends of the ring;
  ``msb`` and ``sign_row_body`` (the bit-sliced carry tree) on random int64 arrays of sizes around block
  boundaries (1, 63, 64, 65, 130 elements), for 2, 3 and 5 parties (hypothesis).
* ``bitwise_and`` against numpy ``&`` (with broadcasting); ``b2a_bits`` reads bit 0 only.

Compilation dominates the run time, so ONE jitted function runs every protocol once on arrays holding all
cases, per number of parties (2 and 3), in a module-scoped fixture. Costs are read off traces.
"""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax
from sjax import bits
from sjax.parallel import simulate
from sjax.primitives.binary import ADDER_AND_WORDS, add_public_body, and_many_body, sign_row_body

F = 16
U64 = np.uint64
ALL_ONES = 2**64 - 1
rng = np.random.default_rng(20261128)

# -- the cases -------------------------------------------------------------------------------------

# Reals, shared at 16 fractional bits: zero, the smallest steps, ordinary values, the ends of the range.
REALS = np.concatenate(
    [
        [0.0, 2.0**-16, -(2.0**-16), 1.0, -1.0, 0.5, -0.75, 3.14159, -1234.5678, 2.0**46, -(2.0**46)],
        [2.0**47 - 2.0**-5, -(2.0**47) + 2.0**-5],  # near 2^(63 - 16), the end of the representable range
        rng.uniform(-1e6, 1e6, 19),
    ]
)
# Raw ring integers, shared with frac_bits=0: the whole int64 range except -2^63 (which share rejects).
RAW = np.concatenate(
    [
        np.array([0, 1, -1, 2, -2, 2**63 - 1, -(2**63) + 1, 2**62, -(2**62), 2**32 - 1, -(2**32), 2**31]),
        rng.integers(-(2**63) + 1, 2**63, 20),
    ]
).astype(np.int64)

# Words for bitwise_and and b2a_bits: all zeros, all ones, alternating bits, single bits, random words.
SPECIAL_WORDS = [
    0, ALL_ONES, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA, 1, 2**63, 0xFFFFFFFF00000000, 0x0123456789ABCDEF
]
WORDS_A = np.concatenate([np.array(SPECIAL_WORDS, U64), rng.integers(0, 2**64, 24, dtype=U64)])
WORDS_B = np.concatenate([np.array(SPECIAL_WORDS[::-1], U64), rng.integers(0, 2**64, 24, dtype=U64)])
OUTER_A, OUTER_B = WORDS_A[:4, None], WORDS_B[None, :5]  # shapes (4, 1) and (1, 5) broadcast to (4, 5)


N_ADDER_SPECIAL = 10


def _adder_cases():
    """(c, r) uint64 pairs for the adder."""
    pairs = [
        (ALL_ONES, 1), (1, ALL_ONES), (2**63, 2**63), (ALL_ONES, ALL_ONES), (ALL_ONES, 0), (0, ALL_ONES),
        (0, 0), (2**63 - 1, 1), (0x5555555555555555, 0xAAAAAAAAAAAAAAAA), (2**32 - 1, 1),
    ]  # fmt: skip
    assert len(pairs) == N_ADDER_SPECIAL
    # A carry chain of every length k: (2^k - 1) + 1 = 2^k (mod 2^64); on either side of the sum.
    pairs += [((1 << k) - 1, 1) for k in range(1, 65)]
    pairs += [(1, (1 << k) - 1) for k in range(1, 65, 3)]
    # Chains that start at bit j and run to the top: carries into and out of the middle of the word.
    pairs += [(((1 << (64 - j)) - 1) << j, 1 << j) for j in range(1, 64, 5)]
    c = np.array([a for a, _ in pairs], U64)
    r = np.array([b for _, b in pairs], U64)
    random_c, random_r = rng.integers(0, 2**64, (2, 40), dtype=U64)
    return np.concatenate([c, random_c]), np.concatenate([r, random_r])


ADD_C, ADD_R = _adder_cases()

# b2a_bits: bit 0 decides, everything above it is noise.
BIT_WORDS = np.concatenate([np.array([0, 1, ALL_ONES, ALL_ONES - 1, 2**63, 2**63 + 1], U64), WORDS_A])


# -- running every protocol once per number of parties ---------------------------------------------


def _adder(r_shares, c, key):
    """XOR shares of c + r from the SPMD adder body, every party simulated."""
    return simulate.run(lambda r, c, key: add_public_body(c, r, key), (r_shares,), (c, key))


def _and_many(x_shares, y_shares, u_shares, key):
    """and_many_body on two pairs of different shapes (one of them broadcast) in one round."""
    return simulate.run(
        lambda x, y, u, key: tuple(and_many_body([(x, y), (u[:, None], u[None, :3])], key)),
        (x_shares, y_shares, u_shares),
        (key,),
    )


# XLA's backend optimisation level 0 (no LLVM optimisation of the generated code): the same HLO, compiled in
# about two thirds of the time. The protocols are integer arithmetic on uint64, so the results are the same.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.partial(jax.jit, static_argnames="n", compiler_options=COMPILER_OPTIONS)
def _battery(reals, raw, words_a, words_b, outer_a, outer_b, bit_words, add_c, add_r, key, *, n):
    keys = iter(jax.random.split(key, 32))
    real_s = sjax.share(reals, next(keys), n)
    raw_s = sjax.share(raw, next(keys), n, frac_bits=0)
    word_pool = sjax.share_bits(
        jnp.concatenate([words_a, words_b, outer_a.ravel(), outer_b.ravel(), bit_words, add_r]), next(keys), n
    )
    sizes = [words_a.size, words_b.size, outer_a.size, outer_b.size, bit_words.size, add_r.size]
    starts = np.cumsum([0, *sizes])
    wa, wb, oa, ob, bw, ar = (word_pool[starts[i] : starts[i + 1]] for i in range(len(sizes)))
    return {
        "a2b reals": sjax.a2b(real_s, next(keys)),
        "a2b raw": sjax.a2b(raw_s, next(keys)),
        "msb reals": sjax.msb(real_s, next(keys)),
        "msb raw": sjax.msb(raw_s, next(keys)),
        "and": sjax.bitwise_and(wa, wb, next(keys)),
        "and outer": sjax.bitwise_and(oa.reshape(4, 1), ob.reshape(1, 5), next(keys)),
        "and_many": _and_many(wa.shares, wb.shares, wa[:6].shares, next(keys)),
        "b2a": sjax.b2a_bits(bw, next(keys)),
        "b2a frac_bits=8": sjax.b2a_bits(bw, next(keys), frac_bits=8),
        "adder": _adder(ar.shares, add_c, next(keys)),
    }


@pytest.fixture(scope="module", params=[2, 3], ids=["2-parties", "3-parties"])
def results(request):
    """(n, name -> result) for ``n`` parties, computed once per module."""
    n = request.param
    # Module-scoped fixtures are set up outside the function-scoped checker of conftest.py: turn it on here.
    with jax.debug_key_reuse(True):
        inputs = (REALS, RAW, WORDS_A, WORDS_B, OUTER_A, OUTER_B, BIT_WORDS, ADD_C, ADD_R)
        out = _battery(*inputs, jax.random.key(11 + n), n=n)
    return n, jax.device_get(out)


def xor_open(shares):
    """The secret of XOR shares ``uint64[n, ...]``: the XOR of the parties' words."""
    return np.bitwise_xor.reduce(np.asarray(shares), axis=0)


def sum_open(share):
    """The exact ring value of an ArithShare: the sum of the shares modulo 2^64, as int64."""
    return np.asarray(share.shares).sum(axis=0, dtype=U64).view(np.int64)


def check_bin(n, share, expected, what):
    assert isinstance(share, sjax.BinShare), what
    assert share.n_parties == n, what
    got = xor_open(share.shares)
    assert got.dtype == U64 and got.shape == expected.shape, what
    bad = np.flatnonzero(got != expected)
    got, expected = got.ravel(), expected.ravel()
    assert bad.size == 0, f"{what}, {n} parties, {bad.size} wrong: {got[bad[:3]]} != {expected[bad[:3]]}"


# -- a2b -------------------------------------------------------------------------------------------


def test_a2b_of_reals_reveals_their_ring_encoding(results):
    n, out = results
    check_bin(n, out["a2b reals"], np.asarray(sjax.ring.encode(REALS, F)), "a2b reals")


def test_a2b_of_ring_integers_over_the_whole_int64_range(results):
    n, out = results
    expected = np.asarray(sjax.ring.encode(RAW, 0))
    np.testing.assert_array_equal(expected, RAW.view(U64))  # encode at 0 bits is the two's complement word
    check_bin(n, out["a2b raw"], expected, "a2b raw")


def test_a2b_output_is_a_fresh_xor_sharing(results):
    # Each party's words are masked: no party alone holds the plaintext word (2^-64 per word by chance).
    n, out = results
    shares = np.asarray(out["a2b raw"].shares)
    assert not np.any(shares == RAW.view(U64)[None])


# -- msb -------------------------------------------------------------------------------------------


def test_msb_of_reals_negative_positive_and_zero(results):
    n, out = results
    share = out["msb reals"]
    assert (share.n_parties, share.frac_bits, share.shape) == (n, F, REALS.shape)
    # 1.0 (2^16 raw) exactly where the real is negative; 0 at zero and for the positive smallest step.
    np.testing.assert_array_equal(sum_open(share), (REALS < 0).astype(np.int64) << F)


def test_msb_of_ring_integers_is_the_top_bit(results):
    # At frac_bits=0, 1.0 is the ring integer 1; the sign bit of every int64 pattern, both ends included.
    n, out = results
    share = out["msb raw"]
    assert (share.n_parties, share.frac_bits) == (n, 0)
    np.testing.assert_array_equal(sum_open(share), (RAW.view(U64) >> U64(63)).astype(np.int64))


_SIGN_SIZES = (1, 63, 64, 65, 130)  # one partial block, one whole, one more element, several blocks


@functools.partial(jax.jit, static_argnames="n", compiler_options=COMPILER_OPTIONS)
def _signs(raws, key, *, n):
    """sjax.msb and the sign rows of sign_row_body for arrays of every size in _SIGN_SIZES at once."""
    keys = jax.random.split(key, 3 * len(raws))
    out = []
    for i, raw in enumerate(raws):
        x = sjax.share(raw, keys[3 * i], n, frac_bits=0)
        rows = simulate.run(sign_row_body, (x.shares,), (keys[3 * i + 1],))
        out.append((sjax.msb(x, keys[3 * i + 2]), rows))
    return out


ring_integers = st.integers(-(2**63) + 1, 2**63 - 1) | st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63) + 1])


@pytest.mark.parametrize("n", [2, 3, 5])
@hypothesis.given(data=st.data())
def test_sign_circuit_over_block_boundaries(n, data):
    # The carry tree works on blocks of 64 elements: sizes around and across block boundaries, the
    # padding of a partial block cut off, every int64 sign (both ends and -1 included).
    raws = tuple(
        np.array(data.draw(st.lists(ring_integers, min_size=size, max_size=size)), dtype=np.int64)
        for size in _SIGN_SIZES
    )
    seed = data.draw(st.integers(0, 2**32 - 1))
    with jax.debug_key_reuse(True):
        out = jax.device_get(_signs(raws, jax.random.key(seed), n=n))
    for raw, (msb, rows) in zip(raws, out):
        expected = (raw < 0).astype(np.int64)
        np.testing.assert_array_equal(sum_open(msb), expected, err_msg=f"msb of {raw.size}")
        packed = xor_open(rows)
        assert packed.shape == (bits.blocks(raw.size),)
        unpacked = (packed[:, None] >> np.arange(64, dtype=U64)) & U64(1)
        np.testing.assert_array_equal(unpacked.ravel()[: raw.size], expected, err_msg=f"rows of {raw.size}")


# -- AND -------------------------------------------------------------------------------------------


def test_bitwise_and_matches_numpy(results):
    n, out = results
    check_bin(n, out["and"], WORDS_A & WORDS_B, "and")


def test_bitwise_and_broadcasts(results):
    n, out = results
    assert out["and outer"].shape == (4, 5)
    check_bin(n, out["and outer"], OUTER_A & OUTER_B, "and outer")


def test_and_many_body_handles_pairs_of_different_shapes(results):
    n, out = results
    first, second = out["and_many"]
    np.testing.assert_array_equal(xor_open(first), WORDS_A & WORDS_B)
    u = WORDS_A[:6]
    np.testing.assert_array_equal(xor_open(second), u[:, None] & u[None, :3])


# -- b2a_bits --------------------------------------------------------------------------------------


def test_b2a_bits_takes_bit_zero_only(results):
    n, out = results
    bit = (BIT_WORDS & U64(1)).astype(np.int64)
    for name, frac_bits in (("b2a", F), ("b2a frac_bits=8", 8)):
        share = out[name]
        assert isinstance(share, sjax.ArithShare)
        assert (share.n_parties, share.frac_bits, share.shape) == (n, frac_bits, BIT_WORDS.shape), name
        np.testing.assert_array_equal(sum_open(share), bit << frac_bits, err_msg=name)


# -- the parallel-prefix adder ---------------------------------------------------------------------


def test_adder_adds_modulo_2_to_the_64(results):
    _, out = results
    expected = ADD_C + ADD_R  # numpy uint64 arithmetic wraps modulo 2^64
    got = xor_open(out["adder"])
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, f"c={ADD_C[bad[:3]]} r={ADD_R[bad[:3]]}: {got[bad[:3]]} != {expected[bad[:3]]}"


def test_adder_carry_chains_by_hand(results):
    # (2^k - 1) + 1 = 2^k for k = 1..63, and (2^64 - 1) + 1 wraps to 0: written out, not computed mod 2^64.
    _, out = results
    start = N_ADDER_SPECIAL
    chains = xor_open(out["adder"])[start : start + 64]
    np.testing.assert_array_equal(chains, np.array([1 << k for k in range(1, 64)] + [0], U64))
    assert xor_open(out["adder"])[0] == 0  # the first special case: (2^64 - 1) + 1


# -- cost ------------------------------------------------------------------------------------------


def arith(n, size=8):
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, size), jnp.uint64), frac_bits=F)


def binary(n, size=8):
    return sjax.BinShare(jax.ShapeDtypeStruct((n, size), jnp.uint64))


@pytest.mark.parametrize("n", [2, 3])
def test_costs(keys, n):
    # (rounds, bytes each party sends per element) as documented; 8 elements.
    cases = {
        "a2b": (sjax.cost(sjax.a2b)(arith(n), keys()), 7, 184),
        "msb": (sjax.cost(sjax.msb)(arith(n), keys()), 8, 8 + 241 * 8 / 8),  # one block for 8 elements
        "bitwise_and": (sjax.cost(sjax.bitwise_and)(binary(n), binary(n), keys()), 1, 16),
        "b2a_bits": (sjax.cost(sjax.b2a_bits)(binary(n), keys()), 1, 8),
        "adder": (
            sjax.cost(_adder)(binary(n).shares, jax.ShapeDtypeStruct((8,), jnp.uint64), keys()),
            6,
            2 * 8 * ADDER_AND_WORDS,  # every AND opens two words: 22 words, 176 bytes
        ),
    }
    for name, (cost, rounds, per_element) in cases.items():
        assert (cost.rounds, cost.bytes_per_party) == (rounds, per_element * (n - 1) * 8), name


def test_and_many_body_takes_one_round_for_all_pairs(keys):
    words = jax.ShapeDtypeStruct((3, 6), jnp.uint64)
    cost = sjax.cost(_and_many)(words, words, words, keys())
    assert (cost.rounds, cost.messages) == (1, 1)
    assert cost.bytes_per_party == 16 * 2 * (6 + 6 * 3)  # (x ^ a, y ^ b) for 6 + 18 word pairs, to 2 others
    assert cost.correlations == {"and_triple": 64 * (6 + 18)}


# -- bad input -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros():
    """All-zero sharings (valid ones) of shape (3,): arithmetic and binary, for 2 and 3 parties."""
    z2, z3 = jnp.zeros((2, 3), jnp.uint64), jnp.zeros((3, 3), jnp.uint64)
    return sjax.ArithShare(z2), sjax.BinShare(z2), sjax.BinShare(z3)


def test_bitwise_and_needs_two_binshares(keys, zeros):
    a2, b2, _ = zeros
    with pytest.raises(TypeError, match="bitwise_and takes two BinShares, got ArithShare and BinShare"):
        sjax.bitwise_and(a2, b2, keys())
    with pytest.raises(TypeError, match="bitwise_and takes two BinShares"):
        sjax.bitwise_and(b2, np.ones(3, np.uint64), keys())


def test_bitwise_and_of_different_party_counts_is_a_value_error(keys, zeros):
    _, b2, b3 = zeros
    with pytest.raises(ValueError, match="2 parties and shares of 3 parties"):
        sjax.bitwise_and(b2, b3, keys())


def test_bitwise_and_of_shapes_that_do_not_broadcast_is_a_value_error(keys, zeros):
    _, b2, _ = zeros
    with pytest.raises(ValueError, match="shapes"):
        sjax.bitwise_and(b2, b2.reshape(3, 1)[:2, 0], keys())


def test_conversions_reject_the_wrong_share_type(keys, zeros):
    a2, b2, _ = zeros
    with pytest.raises(TypeError, match="a2b takes an ArithShare, got BinShare"):
        sjax.a2b(b2, keys())
    with pytest.raises(TypeError, match="a2b takes an ArithShare, got ndarray"):
        sjax.a2b(np.ones(3), keys())
    with pytest.raises(TypeError, match="msb takes an ArithShare, got BinShare"):
        sjax.msb(b2, keys())
    with pytest.raises(TypeError, match="b2a_bits takes a BinShare, got ArithShare"):
        sjax.b2a_bits(a2, keys())


def test_a_non_key_is_a_type_error(zeros):
    a2, b2, _ = zeros
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        sjax.a2b(a2, 0)
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        sjax.bitwise_and(b2, b2, 1.0)
