"""Binary sharing: AND of XOR-shared words, conversions between the two sharings, the most significant bit.

Bits are packed 64 to a ``uint64`` word, so one AND triple word serves 64 bit-ANDs and a 64-bit adder is a
handful of word operations. The adder is a Kogge–Stone parallel-prefix adder: 6 levels of ANDs, one round
each.

* :func:`and_body`: ``x & y`` for XOR-shared words (1 round, one AND triple word per word).
* :func:`a2b_body`: arithmetic share to XOR-shared bits. The dealer supplies a uniform ``r`` in both
  sharings; the parties open ``c = x - r`` and add ``c + r`` in binary (1 + 6 rounds).
* :func:`bit_to_arith_body`: an XOR-shared bit to an additive share of it (B2A), with a dealer bit held in
  both sharings (1 round).
* :func:`sign_row_body`: the sign bits of an arithmetic share, XOR-shared and packed 64 to a word. It
  opens ``x - r`` and computes only the carry into bit 63 of ``(x - r) + r``, with a carry tree on
  bit-sliced words (:mod:`sjax.bits`) that needs 120 AND triple words per 64 elements: 12 times fewer
  than the adder's 22 per element, and 6 rounds as well.
* :func:`msb_body`: the sign bit of an arithmetic share, additively shared as 0 or 1 (8 rounds).

Leakage: none; every opened value is masked by a uniform dealer value.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import bits, comm, randomness
from sjax import parallel
from sjax.shares import ArithShare, BinShare

__all__ = [
    "and_body",
    "and_many_body",
    "add_public_body",
    "a2b_body",
    "bit_to_arith_body",
    "msb_body",
    "sign_row_body",
    "sign_word_body",
    "bitwise_and",
    "a2b",
    "b2a_bits",
    "msb",
]

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_PREFIX_SHIFTS = (1, 2, 4, 8, 16, 32)


def _public_for_first(value: jax.Array) -> jax.Array:
    """A public word as an XOR share: party 0 holds it, everyone else holds zero."""
    return jnp.where(comm.is_first_party(), value, _ZERO)


def and_many_body(
    pairs: list[tuple[jax.Array, jax.Array]],
    key: jax.Array | None,
    triples: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> list[jax.Array]:
    """XOR shares of ``x & y`` for every pair, all in one round (one message, one triple per word).

    ``triples`` are flat AND triple words drawn beforehand (as many as the pairs have words); without
    them one triple per word is drawn from ``key``.

    Cost: 1 round; each party sends ``16 * (n - 1)`` bytes per word pair; 64 AND triples per word pair.
    """
    shapes = [jnp.broadcast_shapes(x.shape, y.shape) for x, y in pairs]
    xs = jnp.concatenate([jnp.broadcast_to(x, s).ravel() for (x, _), s in zip(pairs, shapes)])
    ys = jnp.concatenate([jnp.broadcast_to(y, s).ravel() for (_, y), s in zip(pairs, shapes)])
    a, b, c = randomness.and_triple(key, xs.shape) if triples is None else triples
    d, e = comm.open_bits(xs ^ a, ys ^ b)
    # x & y = c ^ (d & b) ^ (e & a) ^ (d & e); the public d & e is added by party 0 alone.
    z = c ^ (d & b) ^ (e & a) ^ _public_for_first(d & e)
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(z[start : start + size].reshape(shape))
        start += size
    return out


def and_body(x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    """XOR shares of ``x & y`` for XOR-shared words. Cost: 1 round, ``16 * (n - 1)`` bytes per word."""
    return and_many_body([(x, y)], key)[0]


ADDER_AND_WORDS = 2 * (len(_PREFIX_SHIFTS) - 1) + 1
"""AND triple words per element that :func:`add_public_body` uses (4 per level, 2 in the last)."""


def add_public_body(
    c: jax.Array,
    r: jax.Array,
    key: jax.Array | None,
    triples: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """XOR shares of ``(c + r) mod 2^64`` for public ``c`` and XOR-shared ``r``: a Kogge–Stone adder.

    ``triples``: :data:`ADDER_AND_WORDS` flat AND triple words per element drawn beforehand; without them
    they are drawn from ``key`` in one correlation.

    Cost: 6 rounds; each party sends ``8 * (n - 1) * 22`` bytes per word (4 words a level, 2 in the last).
    """
    size = int(np.prod(r.shape, dtype=np.int64))
    if triples is None:
        triples = randomness.and_triple(key, (ADDER_AND_WORDS * size,))
    generate = r & c  # AND with a public word distributes over XOR: local
    propagate = r ^ _public_for_first(c)
    used = 0
    for level, shift in enumerate(_PREFIX_SHIFTS):
        s = np.uint64(shift)
        last = level == len(_PREFIX_SHIFTS) - 1
        words = size * (1 if last else 2)
        level_triples = tuple(t[used : used + words] for t in triples)
        used += words
        if last:
            (new_generate,) = and_many_body([(propagate, generate << s)], None, level_triples)
        else:
            new_generate, propagate = and_many_body(
                [(propagate, generate << s), (propagate, propagate << s)], None, level_triples
            )
        # Generate and propagate of one group are never both set, so OR is XOR.
        generate = generate ^ new_generate
    # generate now holds the carry out of every bit; the carry into bit i is the carry out of bit i - 1.
    return _sum_bits(c, r, generate)


def _sum_bits(c: jax.Array, r: jax.Array, carries_out: jax.Array) -> jax.Array:
    """The sum bits ``c ^ r ^ carry_in`` from the carries out of each bit."""
    return _public_for_first(c) ^ r ^ (carries_out << _ONE)


def _a2b_with(x: jax.Array, material: tuple[jax.Array, ...]) -> jax.Array:
    r_bits, r_value, a, b, c = material[:5]
    (opened,) = comm.open_shares(x - r_value)  # uniform, because r is
    return add_public_body(opened, r_bits, None, (a, b, c))


def a2b_body(x: jax.Array, key: jax.Array) -> jax.Array:
    """XOR shares of the 64 bits of the arithmetic secret ``x``.

    Cost: 7 rounds; each party sends ``8 * (n - 1) * 23`` bytes per element; one dual random word and
    22 * 64 AND triples per element, in one dealer message.
    """
    material = randomness.conversion_material(key, x.shape, and_words=ADDER_AND_WORDS, with_bit=False)
    return _a2b_with(x, material)


def _unmask_bit(v: jax.Array, b_value: jax.Array) -> jax.Array:
    """Additive shares of ``v XOR b`` from the opened bits ``v`` and additive shares of the mask bits ``b``:
    ``v + b - 2 v b``, linear in the shared ``b`` because ``v`` is public."""
    return jnp.where(comm.is_first_party(), v, _ZERO) + b_value * (_ONE - np.uint64(2) * v)


def _bit_to_arith_with(bit: jax.Array, b_word: jax.Array, b_value: jax.Array) -> jax.Array:
    (v,) = comm.open_bits(bit ^ b_word)  # the bit masked by a uniform bit
    return _unmask_bit(v, b_value)


def bit_to_arith_body(bit: jax.Array, key: jax.Array) -> jax.Array:
    """Additive shares (at scale 1, i.e. the integer 0 or 1) of an XOR-shared bit held in bit 0 of a word.

    Cost: 1 round; each party sends ``8 * (n - 1)`` bytes per bit; one dual random bit per bit.
    """
    b_word, b_value = randomness.random_bit(key, bit.shape)
    return _bit_to_arith_with(bit, b_word, b_value)


def _carry_into_top(c_rows: jax.Array, r_rows: jax.Array, triples: tuple[jax.Array, ...]) -> jax.Array:
    """XOR shares of the carry into bit 63 of ``c + r``, for public ``c`` and XOR-shared ``r`` given as
    sliced bits (``uint64[64, blocks]``, :mod:`sjax.bits`): a row of ``blocks`` words, bit ``e`` of
    word ``b`` for element ``64 b + e``.

    A carry-lookahead tree over bits 0..62: each level merges pairs of groups, ``G = G_high ^ (P_high &
    G_low)`` and ``P = P_high & P_low``, halving the rows; the lowest group's ``P`` is never needed (no
    carry enters bit 0). Uses :data:`sjax.randomness.SIGN_AND_ROWS` AND triple words per block.

    Cost: 6 rounds; each party sends ``16 * (n - 1) * 120`` bytes per block of 64 elements.
    """
    # Bits 0..62 as rows 1..63 under an empty row 0 (no generate; its propagate is never read): the
    # carry out of all 64 rows is then the carry out of bit 62.
    zero = jnp.zeros_like(c_rows[:1])
    generate = jnp.concatenate([zero, r_rows[:63] & c_rows[:63]])  # AND with public c: local
    propagate = jnp.concatenate([zero, r_rows[:63] ^ _public_for_first(c_rows[:63])])
    used = 0
    while generate.shape[0] > 1:
        g_low, g_high = generate[0::2], generate[1::2]
        p_low, p_high = propagate[0::2], propagate[1::2]
        pairs = [(p_high, g_low)] + ([(p_high[1:], p_low[1:])] if g_low.shape[0] > 1 else [])
        words = sum(x.size for x, _ in pairs)
        level_triples = tuple(t[used : used + words] for t in triples)
        used += words
        products = and_many_body(pairs, None, level_triples)
        generate = g_high ^ products[0]
        if len(products) > 1:
            propagate = jnp.concatenate([zero, products[1]])  # row 0: the lowest group's, unused
    return generate[0]


def _sign_row_with(x: jax.Array, material: tuple[jax.Array, ...]) -> jax.Array:
    """XOR shares of the sign bits of the flat ``x``, packed 64 to a word (``uint64[blocks]``)."""
    r_rows, r_value, a, b, c = material[:5]
    flat = x.reshape(-1)
    (opened,) = comm.open_shares(flat - r_value[: flat.size])  # uniform, because r is
    c_rows = bits.slice_words(opened)
    # x = c + r: its sign bit is c's bit 63 ^ r's bit 63 ^ the carry into bit 63.
    return _public_for_first(c_rows[63]) ^ r_rows[63] ^ _carry_into_top(c_rows, r_rows, (a, b, c))


def sign_row_body(x: jax.Array, key: jax.Array) -> jax.Array:
    """XOR shares of the sign bits of ``x`` (flattened), packed 64 to a word: ``uint64[ceil(size / 64)]``.

    Opens ``x - r`` for a dealer's uniform ``r``, then computes only the carry into bit 63 of ``(x - r) +
    r`` with a carry tree on bit-sliced words (:func:`_carry_into_top`): 120 AND triple words per 64
    elements, where a full adder per element word takes 22 per element.

    Cost: 7 rounds; each party sends ``8 * (n - 1) * (size + 240 * blocks)`` bytes, ``blocks =
    ceil(size / 64)``; the dealer sends ``8 * (64 + 120) * blocks`` bytes.
    """
    return _sign_row_with(x, randomness.sign_material(key, x.size, with_bit=False))


def msb_body(x: jax.Array, key: jax.Array) -> jax.Array:
    """Additive shares of the sign bit of ``x`` (1 when ``x`` is negative as a two's-complement integer).

    :func:`sign_row_body`, then a B2A of the packed bits: one opened word per 64 bits.

    Cost: 8 rounds; each party sends ``8 * (n - 1) * (size + 241 * blocks)`` bytes, ``blocks =
    ceil(size / 64)``; the dealer sends ``8 * (128 + 120) * blocks`` bytes; all in one dealer message.
    """
    material = randomness.sign_material(key, x.size, with_bit=True)
    row = _sign_row_with(x, material)
    bit_row, bit_value = material[5:]
    (masked,) = comm.open_bits(row ^ bit_row)  # 64 sign bits a word, each masked by a uniform bit
    return _unmask_bit(bits.unpack_bits(masked, x.size), bit_value[: x.size]).reshape(x.shape)


def sign_word_body(x: jax.Array, key: jax.Array) -> jax.Array:
    """XOR shares of the sign bit of ``x`` in bit 0 of a word (the bits above are zero).

    This is :func:`msb_body` without its last round (the B2A): the caller converts the bit in a fused
    round (:func:`sjax.primitives.fixed.fused_round`), together with the products it enters.

    Cost: 7 rounds; as :func:`sign_row_body`.
    """
    return bits.unpack_bits(sign_row_body(x, key), x.size).reshape(x.shape)


# -- public API --------------------------------------------------------------------------------------


def bitwise_and(x: BinShare, y: BinShare, key: jax.Array) -> BinShare:
    """Bitwise AND of two XOR-shared arrays of words (with broadcasting).

    Cost: 1 round; each party sends ``16 * (n - 1)`` bytes per word; the dealer sends ``8`` bytes per word.
    """
    if not isinstance(x, BinShare) or not isinstance(y, BinShare):
        raise TypeError(f"bitwise_and takes two BinShares, got {type(x).__name__} and {type(y).__name__}")
    x._check_compatible(y, "AND")
    key = randomness.check_key(key)
    return BinShare(parallel.run(and_body, (x.shares, y.shares), (key,)))


def a2b(x: ArithShare, key: jax.Array) -> BinShare:
    """Converts an arithmetic share to XOR shares of its 64-bit ring value (two's complement, scaled).

    Cost: 7 rounds; each party sends ``184 * (n - 1)`` bytes per element.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"a2b takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    return BinShare(parallel.run(a2b_body, (x.shares,), (key,)))


def b2a_bits(x: BinShare, key: jax.Array, frac_bits: int = 16) -> ArithShare:
    """Converts XOR-shared bits (bit 0 of each word; higher bits are ignored) to an ArithShare of 0.0/1.0.

    Cost: 1 round; each party sends ``8 * (n - 1)`` bytes per element.
    """
    if not isinstance(x, BinShare):
        raise TypeError(f"b2a_bits takes a BinShare, got {type(x).__name__}")
    key = randomness.check_key(key)

    def body(words, key):
        return bit_to_arith_body(words & _ONE, key) << np.uint64(frac_bits)

    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=frac_bits)


def msb(x: ArithShare, key: jax.Array) -> ArithShare:
    """1.0 where the secret is negative, else 0.0 (as an ArithShare with ``x``'s frac_bits).

    Cost: 8 rounds; each party sends ``8 * (n - 1) * (size + 241 * ceil(size / 64))`` bytes (38.125 per
    element for sizes that are multiples of 64); the dealer sends ``1984`` bytes per block of 64 elements.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"msb takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    body = functools.partial(_scaled_msb_body, frac_bits=x.frac_bits)
    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=x.frac_bits)


def _scaled_msb_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    return msb_body(x, key) << np.uint64(frac_bits)
