"""ChaCha20 (RFC 8439) as a JAX PRNG implementation: the generator behind every mask and correlation.

JAX's default generator, threefry2x32, is fast but does not claim cryptographic security. This
implementation runs the ChaCha20 block function (a stream cipher and PRF with a 256-bit key) with its ten
double rounds in a ``lax.fori_loop``, so each call site adds a small loop to the program (an unrolled
ChaCha20 makes XLA's compile time and memory explode), and vectorises a block's four quarter rounds over
the rows of the state. XLA materialises the loop's intermediate arrays, so long draws run in chunks that
keep them in cache (:func:`keystream`). On the 2-core CI machine (``uint64`` values, jitted, best of 3)
it draws 1e6 values at 11.7 ns each (threefry: 8.4 ns) and 4e7 at 15.0 ns (threefry: 13.8 ns); in one
pass, before chunking, 4e7 took 40 ns each. sjax also keeps its cost down by drawing each correlation in
one call and only the words it uses (see :mod:`sjax.randomness`).

A key is 8 ``uint32`` words (the ChaCha key). The 32-bit block counter and the 96-bit nonce separate the
uses of one key: ``random_bits`` reads the keystream with nonce ``(0, 0, 0)``; ``split`` and ``fold_in``
derive new keys from the first 8 output words of blocks with nonces ``(1, 0, 0)`` and ``(2, 0, 0)``.

Use :data:`CHACHA20` as ``impl`` in ``jax.random.key`` / ``jax.random.wrap_key_data``. sjax converts every
key it is given where it first splits or expands it (:func:`from_key`, through
:func:`sjax.randomness.cipher_key`), so users keep passing ordinary JAX keys (threefry, rbg, legacy) and
every mask and correlation still comes from ChaCha20.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl

__all__ = ["CHACHA20", "CHUNK_BLOCKS", "block", "keystream", "from_key"]

_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_STREAM, _SPLIT, _FOLD = 0, 1, 2  # first nonce word: what a block is for

CHUNK_BLOCKS = 65536
"""Blocks (64 bytes each) per chunk of a long draw: 4 MiB of keystream, whose round-loop arrays fit in a
server CPU's cache. On the 2-core CI machine, 2e7 ``uint64`` values took 37.6 ns each in one pass and
15.5 ns in chunks of 65536 blocks (16384: 17.4 ns; 1024: 24.3 ns: the loop's per-chunk overhead)."""


def _rotl(x: jax.Array, n: int) -> jax.Array:
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def _quarter_rounds(a: jax.Array, b: jax.Array, c: jax.Array, d: jax.Array) -> tuple:
    """Four quarter rounds at once: ``a, b, c, d`` are the state's rows (``uint32[4, m]``), so column ``j``
    of the four rows is the quarter round on words ``(j, 4 + j, 8 + j, 12 + j)``."""
    a = a + b
    d = _rotl(d ^ a, 16)
    c = c + d
    b = _rotl(b ^ c, 12)
    a = a + b
    d = _rotl(d ^ a, 8)
    c = c + d
    b = _rotl(b ^ c, 7)
    return a, b, c, d


def _double_round(_, state: tuple) -> tuple:
    # Column round, then the diagonal round as a column round on rows rotated by 1, 2 and 3 words (the
    # diagonal (j, 4 + (j+1)%4, 8 + (j+2)%4, 12 + (j+3)%4) becomes column j), rotated back after.
    a, b, c, d = _quarter_rounds(*state)
    a, b, c, d = _quarter_rounds(a, jnp.roll(b, -1, 0), jnp.roll(c, -2, 0), jnp.roll(d, -3, 0))
    return a, jnp.roll(b, 1, 0), jnp.roll(c, 2, 0), jnp.roll(d, 3, 0)


def block(key: jax.Array, counter: jax.Array, nonce: tuple[int, int, int] | jax.Array) -> jax.Array:
    """The ChaCha20 block function (RFC 8439, section 2.3) for a batch of counters.

    Args:
        key: ``uint32[8]``.
        counter: ``uint32[m]`` block counters.
        nonce: three ``uint32`` words.

    Returns:
        ``uint32[m, 16]``: the 64-byte blocks as little-endian words.
    """
    counter = counter.astype(jnp.uint32)
    nonce = jnp.asarray(nonce, dtype=jnp.uint32)
    (m,) = counter.shape
    # The state as four rows of four words, each word a vector over the blocks: the quarter rounds of
    # a round are then 12 vector operations on [4, m] arrays. XLA (on CPU it has no multi-output fusion)
    # materialises about one array per operation, so fewer, wider operations compile and run faster than
    # sixteen [m] words.
    key = key.astype(jnp.uint32)
    initial = (
        jnp.broadcast_to(jnp.asarray(_CONSTANTS, jnp.uint32)[:, None], (4, m)),
        jnp.broadcast_to(key[:4, None], (4, m)),
        jnp.broadcast_to(key[4:, None], (4, m)),
        jnp.concatenate([counter[None], jnp.broadcast_to(nonce[:, None], (3, m))]),
    )
    # A trip count hidden behind an optimization barrier keeps XLA from unrolling the loop: one small
    # loop per call site compiles far faster than twenty unrolled rounds.
    rounds = lax.optimization_barrier(jnp.int32(10))
    final = lax.fori_loop(0, rounds, _double_round, initial)
    return jnp.concatenate([f + i for f, i in zip(final, initial)], axis=0).T


def _seed(seed: jax.Array) -> jax.Array:
    seed = jnp.asarray(seed)
    wide = seed.astype(jnp.uint64) if seed.dtype.itemsize == 8 else seed.astype(jnp.int64).astype(jnp.uint64)
    low = (wide & np.uint64(0xFFFFFFFF)).astype(jnp.uint32)
    high = (wide >> np.uint64(32)).astype(jnp.uint32)
    return jnp.concatenate([jnp.stack([low, high]), jnp.zeros((6,), jnp.uint32)])


def _derive(key: jax.Array, counters: jax.Array, purpose: int) -> jax.Array:
    return block(key, counters, (purpose, 0, 0))[..., :8]


def _split(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    count = math.prod(shape)
    return _derive(key, jnp.arange(count, dtype=jnp.uint32), _SPLIT).reshape(*shape, 8)


def _fold_in(key: jax.Array, data: jax.Array) -> jax.Array:
    return _derive(key, jnp.asarray(data).astype(jnp.uint32)[None], _FOLD)[0]


def _random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    if bit_width not in (8, 16, 32, 64):
        raise TypeError(f"ChaCha20 random_bits supports 8, 16, 32 or 64 bits, got {bit_width}")
    count = math.prod(shape)
    words_per_value = 2 if bit_width == 64 else 1
    dtype = {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32, 64: jnp.uint64}[bit_width]

    def values(words: jax.Array) -> jax.Array:
        # A 64-bit value is two consecutive words, little-endian; narrower ones keep a word's low bits.
        if bit_width == 64:
            pairs = words.reshape(-1, 2).astype(jnp.uint64)
            return pairs[:, 0] | (pairs[:, 1] << np.uint64(32))
        return words.astype(dtype)

    return keystream(key, count * words_per_value, values)[:count].reshape(shape)


def keystream(key: jax.Array, n_words: int, finish=lambda words: words) -> jax.Array:
    """The first ``n_words`` words (at least) of the ChaCha20 keystream of ``key`` with nonce ``(0, 0, 0)``,
    in RFC 8439 order (block counters from 0), each chunk of words passed through ``finish``.

    A draw of more than :data:`CHUNK_BLOCKS` blocks runs the block function chunk by chunk (a
    ``lax.map``): the round loop's arrays then stay in the processor's cache, where one pass over the
    whole draw per operation would stream every intermediate array through main memory (2-3 times
    slower for draws of millions of words on a CPU). ``finish`` maps a chunk's ``uint32[16 b]`` words to
    the caller's values (``uint64`` pairs, say) inside the chunk, for the same reason.

    Returns:
        ``finish``'s values for all chunks, concatenated: at least ``n_words`` words' worth, possibly
        more (the last block is whole); the caller slices.
    """
    blocks = max(-(-n_words // 16), 1)
    n_chunks = -(-blocks // CHUNK_BLOCKS)
    if n_chunks == 1:
        return finish(block(key, jnp.arange(blocks, dtype=jnp.uint32), (_STREAM, 0, 0)).reshape(-1))
    per_chunk = -(-blocks // n_chunks)  # chunks of equal size, padded by fewer than n_chunks blocks
    counters = jnp.arange(n_chunks * per_chunk, dtype=jnp.uint32).reshape(n_chunks, per_chunk)
    chunks = lax.map(lambda c: finish(block(key, c, (_STREAM, 0, 0)).reshape(-1)), counters)
    return chunks.reshape(-1, *chunks.shape[2:])


CHACHA20 = define_prng_impl(
    key_shape=(8,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="chacha20",
    tag="cc20",
)
"""The ChaCha20 PRNG implementation for ``jax.random``."""


def from_key(key: jax.Array) -> jax.Array:
    """A ChaCha20 key from any typed JAX key: the key itself if it is one, else 8 ``uint32`` words drawn from
    it with its own generator (consuming it, so reuse checks see the use). Deterministic."""
    if jax.random.key_impl(key) == CHACHA20:
        return key
    return jax.random.wrap_key_data(jax.random.bits(key, (8,), dtype=jnp.uint32), impl=CHACHA20)
