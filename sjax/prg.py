"""ChaCha20 (RFC 8439) as a JAX PRNG implementation: the generator behind every mask and correlation.

JAX's default generator, threefry2x32, is fast but does not claim cryptographic security, and each call
site compiles its own unrolled copy of the cipher, which makes protocol programs with dozens of
correlations slow to compile. This implementation runs the ChaCha20 block function (a stream cipher and
PRF with a 256-bit key) with its ten double rounds in a ``lax.fori_loop``, so each call site adds a small
loop to the program.

A key is 8 ``uint32`` words (the ChaCha key). The 32-bit block counter and the 96-bit nonce separate the
uses of one key: ``random_bits`` reads the keystream with nonce ``(0, 0, 0)``; ``split`` and ``fold_in``
derive new keys from the first 8 output words of blocks with nonces ``(1, 0, 0)`` and ``(2, 0, 0)``.

Use :data:`CHACHA20` as ``impl`` in ``jax.random.key`` / ``jax.random.wrap_key_data``; sjax converts every
key it is given (see :func:`sjax.randomness.check_key`), so users keep passing ordinary JAX keys.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl

__all__ = ["CHACHA20", "block", "from_key"]

_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_COLUMNS = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15))
_DIAGONALS = ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))
_STREAM, _SPLIT, _FOLD = 0, 1, 2  # first nonce word: what a block is for


def _rotl(x: jax.Array, n: int) -> jax.Array:
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def _quarter_round(s: list, a: int, b: int, c: int, d: int) -> None:
    s[a] = s[a] + s[b]
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = s[c] + s[d]
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = s[a] + s[b]
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = s[c] + s[d]
    s[b] = _rotl(s[b] ^ s[c], 7)


def _double_round(_, state: tuple) -> tuple:
    s = list(state)
    for quarter in _COLUMNS + _DIAGONALS:
        _quarter_round(s, *quarter)
    return tuple(s)


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
    shape = counter.shape
    initial = (
        [jnp.full(shape, c, dtype=jnp.uint32) for c in _CONSTANTS]
        + [jnp.broadcast_to(key[i], shape) for i in range(8)]
        + [counter]
        + [jnp.broadcast_to(nonce[i], shape) for i in range(3)]
    )
    # A trip count hidden behind an optimization barrier keeps XLA from unrolling the loop: one small
    # loop per call site compiles far faster than twenty unrolled rounds.
    rounds = lax.optimization_barrier(jnp.int32(10))
    final = lax.fori_loop(0, rounds, _double_round, tuple(initial))
    return jnp.stack([f + i for f, i in zip(final, initial)], axis=-1)


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
    words_needed = count * (2 if bit_width == 64 else 1)
    blocks = max(-(-words_needed // 16), 1)
    words = block(key, jnp.arange(blocks, dtype=jnp.uint32), (_STREAM, 0, 0)).reshape(-1)[:words_needed]
    if bit_width == 64:
        pairs = words.reshape(count, 2).astype(jnp.uint64)
        return (pairs[:, 0] | (pairs[:, 1] << np.uint64(32))).reshape(shape)
    if bit_width == 32:
        return words.reshape(shape)
    return words.astype({8: jnp.uint8, 16: jnp.uint16}[bit_width]).reshape(shape)


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
    """A ChaCha20 key drawn from any typed JAX key (consuming it, so reuse checks see the use)."""
    if jax.random.key_impl(key) == CHACHA20:
        return key
    return jax.random.wrap_key_data(jax.random.bits(key, (8,), dtype=jnp.uint32), impl=CHACHA20)
