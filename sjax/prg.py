"""ChaCha20 (RFC 8439) as a JAX PRNG implementation: the generator behind every mask and correlation.

JAX's default generator, threefry2x32, is fast but does not claim cryptographic security. This
implementation runs the ChaCha20 block function (a stream cipher and PRF with a 256-bit key) with its ten
double rounds in a ``lax.fori_loop``, so each call site adds a small loop to the program (an unrolled
ChaCha20 makes XLA's compile time and memory explode), and vectorises a block's four quarter rounds over
the rows of the state (:func:`block`). Long draws run in chunks whose loop arrays stay in cache
(:func:`keystream`). On the 2-core CI machine a jitted draw of ``uint64`` values takes 9 to 17 ns per
value from 1e6 to 4e7 values (threefry: 4 ns at 1e6, where its arrays stay in cache, 12 to 14 ns beyond
1e7); in sjax's operations, whose time is mostly drawing, ChaCha20 takes 1.05 to 1.3 times threefry's
time (benchmarks/README.md). sjax also keeps the cost down by drawing each correlation in one call and
only the words it uses (see :mod:`sjax.randomness`).

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
server CPU's cache. On the 2-core CI machine 2e7 ``uint64`` values took 31 ns each in one pass, 14 ns in
chunks of 65536 blocks and 16 ns in chunks of 16384 (the loop's per-chunk overhead grows below that)."""


def _rotl(x: jax.Array, n: int) -> jax.Array:
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def _column_round(state: jax.Array) -> jax.Array:
    """The four quarter rounds of a column round at once: ``state`` is ``uint32[4, 4, m]``, rows ``a, b, c,
    d`` of four words each, so column ``j`` of the rows is the quarter round on words ``(j, 4 + j, 8 + j,
    12 + j)``. Returns the state in the same layout."""
    a, b, c, d = state[0], state[1], state[2], state[3]
    a = a + b
    d = _rotl(d ^ a, 16)
    c = c + d
    b = _rotl(b ^ c, 12)
    a = a + b
    d = _rotl(d ^ a, 8)
    c = c + d
    b = _rotl(b ^ c, 7)
    return jnp.stack([a, b, c, d])


# Word w = 4 r + j of the state, moved to position 4 r + (j - r) % 4, turns the diagonals (j, 4 + (j+1)%4,
# 8 + (j+2)%4, 12 + (j+3)%4) into columns: a diagonal round is a column round between two permutations.
_TO_DIAGONALS = np.array([4 * r + (j + r) % 4 for r in range(4) for j in range(4)])
_FROM_DIAGONALS = np.argsort(_TO_DIAGONALS)


def _double_round(_, state: jax.Array) -> jax.Array:
    m = state.shape[-1]
    state = _column_round(state).reshape(16, m)[_TO_DIAGONALS].reshape(4, 4, m)
    return _column_round(state).reshape(16, m)[_FROM_DIAGONALS].reshape(4, 4, m)


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
    # The state is one uint32[4, 4, m] array, each word a vector over the blocks, and a double round is
    # two column rounds with the words permuted between them. XLA's CPU backend has no multi-output
    # fusion: with one array as the loop's state, each column round (permutation included) fuses into a
    # single kernel that recomputes what its outputs share rather than materialising an array per
    # operation. Against four [4, m] row arrays with rolled rows this halves the kernels per call site
    # (7 against 16) and the compile time, and draws as fast or faster (5.0 against 5.2 ns per word for
    # 65536 blocks; 8.2 against 13.6 for 1000).
    key = key.astype(jnp.uint32)
    initial = jnp.concatenate([
        jnp.broadcast_to(jnp.asarray(_CONSTANTS, jnp.uint32)[:, None], (4, m)),
        jnp.broadcast_to(key[:, None], (8, m)),
        counter[None],
        jnp.broadcast_to(nonce[:, None], (3, m)),
    ]).reshape(4, 4, m)
    # A trip count hidden behind an optimization barrier keeps XLA from unrolling the loop: one small
    # loop per call site compiles far faster than twenty unrolled rounds.
    rounds = lax.optimization_barrier(jnp.int32(10))
    final = lax.fori_loop(0, rounds, _double_round, initial)
    return (final + initial).reshape(16, m).T


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
    def chunk(counters: jax.Array) -> jax.Array:
        return finish(block(key, counters, (_STREAM, 0, 0)).reshape(-1))

    blocks = max(-(-n_words // 16), 1)
    n_chunks = -(-blocks // CHUNK_BLOCKS)
    if n_chunks == 1:
        return chunk(jnp.arange(blocks, dtype=jnp.uint32))
    per_chunk = -(-blocks // n_chunks)  # chunks of equal size, padded by fewer than n_chunks blocks
    counters = jnp.arange(n_chunks * per_chunk, dtype=jnp.uint32).reshape(n_chunks, per_chunk)
    chunks = lax.map(chunk, counters)
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
