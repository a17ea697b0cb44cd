"""Bit slicing: 64 elements' bits side by side in ``uint64`` words, for circuits that narrow as they go.

A word per element holds one element's 64 bits; a *sliced* array ``uint64[64, blocks]`` holds in row ``j``
bit ``j`` of 64 consecutive elements (element ``64 b + e`` in bit ``e`` of column ``b``). A carry tree that
halves the live bits at every level (:func:`sjax.primitives.binary.sign_row_body`) then works on whole
rows: at each level it ANDs half as many rows as the level before, and every word it ANDs is full, where
on one word per element half of each word would be dead after the first level. Slicing is 64x64 bit-matrix
transposes, six rounds of masked swaps over the words (local, a few operations per word).

The element count is padded to whole blocks of 64; the padding's bits are zeros on the way in, and
whatever a circuit makes of them is cut off on the way out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["blocks", "transpose_blocks", "slice_words", "unslice_words", "pack_bits", "unpack_bits"]

_SWAP_STEPS = tuple(
    # (s, mask of the bit positions c with c & s == 0): step s swaps bit c + s of row r with bit c of
    # row r + s, for every r with r & s == 0, which over the six steps transposes the 64x64 bit matrix.
    (s, np.uint64(sum(1 << c for c in range(64) if not c & s)))
    for s in (32, 16, 8, 4, 2, 1)
)


def blocks(size: int) -> int:
    """Blocks of 64 elements that ``size`` elements take (at least one)."""
    return max(-(-size // 64), 1)


def transpose_blocks(words: jax.Array) -> jax.Array:
    """Transposes each 64x64 bit matrix in ``uint64[..., 64]``: bit ``c`` of row ``r`` becomes bit ``r``
    of row ``c``. Its own inverse. Cost: 6 steps of 6 word operations, local."""
    lead = words.shape[:-1]
    for s, mask in _SWAP_STEPS:
        pairs = words.reshape(*lead, 64 // (2 * s), 2, s)
        low, high = pairs[..., 0, :], pairs[..., 1, :]
        t = ((low >> np.uint64(s)) ^ high) & mask
        words = jnp.stack([low ^ (t << np.uint64(s)), high ^ t], axis=-2).reshape(*lead, 64)
    return words


def _in_blocks(flat: jax.Array) -> jax.Array:
    """``flat`` padded with zeros to whole blocks, as ``[blocks, 64]``."""
    return jnp.pad(flat, (0, 64 * blocks(flat.size) - flat.size)).reshape(-1, 64)


def slice_words(words: jax.Array) -> jax.Array:
    """``uint64[64, blocks]``: row ``j`` holds bit ``j`` of every element of the flat ``words``."""
    return transpose_blocks(_in_blocks(words.reshape(-1))).T


def unslice_words(rows: jax.Array, size: int) -> jax.Array:
    """The inverse of :func:`slice_words`: the first ``size`` elements' words, flat."""
    return transpose_blocks(rows.T).reshape(-1)[:size]


def pack_bits(bits: jax.Array) -> jax.Array:
    """``uint64[blocks]``: bit 0 of each flat element of ``bits``, 64 elements to a word."""
    padded = _in_blocks(bits.reshape(-1) & np.uint64(1))
    return (padded << jnp.arange(64, dtype=jnp.uint64)).sum(axis=-1, dtype=jnp.uint64)


def unpack_bits(row: jax.Array, size: int) -> jax.Array:
    """The inverse of :func:`pack_bits`: ``uint64[size]`` of 0s and 1s."""
    return ((row[:, None] >> jnp.arange(64, dtype=jnp.uint64)) & np.uint64(1)).reshape(-1)[:size]
