"""ChaCha20 as a JAX PRNG implementation: RFC 8439 vectors, key API behaviour, use inside protocols."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax
from sjax import prg


def _words(hex_bytes: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_bytes), dtype="<u4")


def test_block_function_matches_rfc8439_section_2_3_2():
    key = jnp.asarray(np.frombuffer(bytes(range(32)), dtype="<u4"))
    nonce = tuple(int(w) for w in _words("000000090000004a00000000"))
    block = prg.block(key, jnp.array([1], jnp.uint32), nonce)
    expected = (
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )
    assert np.asarray(block[0]).astype("<u4").tobytes().hex() == expected


def test_keystream_matches_rfc8439_section_2_4_2():
    # The encryption example: the keystream is the XOR of plaintext and ciphertext (first 64 bytes).
    key = jnp.asarray(np.frombuffer(bytes(range(32)), dtype="<u4"))
    nonce = tuple(int(w) for w in _words("000000000000004a00000000"))
    plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you o"
    ciphertext = bytes.fromhex(
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    )
    stream = np.asarray(prg.block(key, jnp.array([1], jnp.uint32), nonce)[0]).astype("<u4").tobytes()
    assert bytes(a ^ b for a, b in zip(plaintext, stream)) == ciphertext


def test_chacha_keys_work_with_jax_random_and_sjax():
    key = jax.random.key(0, impl=prg.CHACHA20)
    first, second = jax.random.split(key)
    assert not np.array_equal(jax.random.bits(first, (4,), jnp.uint64), jax.random.bits(second, (4,), jnp.uint64))
    x = sjax.share(jnp.array([1.5, -2.0]), jax.random.key(1, impl=prg.CHACHA20), n_parties=3)
    y = sjax.mul(x, x, jax.random.key(2, impl=prg.CHACHA20))
    np.testing.assert_allclose(sjax.reveal(y), [2.25, 4.0], atol=1e-4)


def test_chacha_keys_are_deterministic_and_checked_for_reuse():
    a = jax.random.bits(jax.random.key(7, impl=prg.CHACHA20), (8,), jnp.uint64)
    b = jax.random.bits(jax.random.key(7, impl=prg.CHACHA20), (8,), jnp.uint64)
    np.testing.assert_array_equal(a, b)
    key = jax.random.key(3, impl=prg.CHACHA20)
    x = sjax.share(jnp.ones(2), jax.random.key(4), n_parties=2)
    sjax.mul(x, x, key)
    with pytest.raises(jax.errors.KeyReuseError):
        sjax.mul(x, x, key)


@pytest.mark.parametrize("bit_width, dtype", [(8, jnp.uint8), (16, jnp.uint16), (32, jnp.uint32), (64, jnp.uint64)])
def test_random_bits_of_every_width(bit_width, dtype):
    bits = jax.random.bits(jax.random.key(5, impl=prg.CHACHA20), (1000,), dtype)
    assert bits.dtype == dtype
    # Each bit position is set about half the time (1000 draws: 4 standard deviations is about 0.063).
    ones = np.unpackbits(np.asarray(bits).view(np.uint8)).reshape(1000, bit_width).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.07)
