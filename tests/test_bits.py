"""Tests for bit slicing, :mod:`sjax.bits`: exact, against a bit-by-bit reference in numpy.

* ``slice_words``: row ``j``, column ``b`` holds bit ``j`` of elements ``64 b .. 64 b + 63`` in bits 0..63;
  ``unslice_words`` inverts it for every size (the padding of a last, partial block cut off).
* ``transpose_blocks`` is its own inverse.
* ``pack_bits`` / ``unpack_bits``: bit 0 of each element, 64 to a word, and back.
"""

import hypothesis
import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
import pytest

from sjax import bits

U64 = np.uint64


def reference_slice(words: np.ndarray) -> np.ndarray:
    rows = np.zeros((64, bits.blocks(words.size)), dtype=U64)
    for e, word in enumerate(words.tolist()):
        for j in range(64):
            if (word >> j) & 1:
                rows[j, e // 64] |= U64(1 << (e % 64))
    return rows


words_of_any_size = st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=200).map(
    lambda v: np.array(v, dtype=U64)
)


@hypothesis.given(words_of_any_size)
def test_slice_words_matches_the_reference_and_unslices(words):
    rows = np.asarray(bits.slice_words(jnp.asarray(words)))
    np.testing.assert_array_equal(rows, reference_slice(words))
    np.testing.assert_array_equal(np.asarray(bits.unslice_words(jnp.asarray(rows), words.size)), words)


@pytest.mark.parametrize("pattern", [0, 2**64 - 1, 0x5555555555555555, 1, 2**63])
def test_transpose_of_special_blocks(pattern):
    block = np.full(64, pattern, dtype=U64)
    block[7] ^= U64(2**40)  # one bit off the pattern: row 7, column 40 moves to row 40, column 7
    transposed = np.asarray(bits.transpose_blocks(jnp.asarray(block)))
    np.testing.assert_array_equal(transposed, reference_slice(block)[:, 0])
    np.testing.assert_array_equal(np.asarray(bits.transpose_blocks(jnp.asarray(transposed))), block)


@hypothesis.given(words_of_any_size)
def test_pack_bits_keeps_bit_zero_only_and_unpacks(words):
    packed = np.asarray(bits.pack_bits(jnp.asarray(words)))
    np.testing.assert_array_equal(packed, reference_slice(words & U64(1))[0])
    unpacked = np.asarray(bits.unpack_bits(jnp.asarray(packed), words.size))
    np.testing.assert_array_equal(unpacked, words & U64(1))


@pytest.mark.parametrize("size, blocks", [(1, 1), (63, 1), (64, 1), (65, 2), (128, 2), (129, 3), (0, 1)])
def test_blocks(size, blocks):
    assert bits.blocks(size) == blocks
