"""ChaCha20 as a JAX PRNG implementation: RFC 8439 vectors, key API behaviour, use inside protocols, and the
conversion of every key (threefry, rbg, legacy, ChaCha20) to ChaCha20 where sjax derives randomness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sjax
from sjax import prg, randomness


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


# -- every key becomes a ChaCha20 key where sjax derives randomness from it -------------------------------

KEY_MAKERS = {
    "threefry": lambda seed: jax.random.key(seed),
    "rbg": lambda seed: jax.random.key(seed, impl="rbg"),
    "legacy": lambda seed: jax.random.PRNGKey(seed),
    "chacha20": lambda seed: jax.random.key(seed, impl=prg.CHACHA20),
}


def _is_chacha(key) -> bool:
    return jax.random.key_impl(key) == prg.CHACHA20


@pytest.mark.parametrize("kind", sorted(KEY_MAKERS))
def test_cipher_key_turns_every_key_into_a_deterministic_chacha_key(kind):
    make = KEY_MAKERS[kind]
    converted = randomness.cipher_key(randomness.check_key(make(3)))
    assert _is_chacha(converted)
    again = randomness.cipher_key(randomness.check_key(make(3)))
    other = randomness.cipher_key(randomness.check_key(make(4)))
    np.testing.assert_array_equal(jax.random.key_data(converted), jax.random.key_data(again))
    assert not np.array_equal(jax.random.key_data(converted), jax.random.key_data(other))


def test_a_chacha_key_is_used_as_it_is():
    key = jax.random.key(5, impl=prg.CHACHA20)
    assert randomness.cipher_key(key) is key


def test_every_key_sjax_derives_is_a_chacha_key(keys):
    assert all(_is_chacha(k) for k in randomness.split(jax.random.key(0), 3))
    # The key stream of the secure transform, the keys of loop bodies included.
    from sjax.transform._context import Context

    context = Context(jax.random.key(1), 2, 16)
    assert _is_chacha(context.next_key())
    assert context.abstract_key().dtype == jax.random.key(0, impl=prg.CHACHA20).dtype


@pytest.mark.parametrize("kind", ["threefry", "rbg", "legacy"])
def test_shares_come_from_the_chacha_key_of_the_users_key(kind):
    # A protocol given any key computes exactly what it computes given that key's ChaCha20 conversion: the
    # conversion happens before any randomness is drawn, so every mask and correlation is ChaCha20 output.
    make = KEY_MAKERS[kind]
    x = jnp.array([1.5, -2.0, 0.25])
    shared = sjax.share(x, make(1), n_parties=3)
    converted = sjax.share(x, randomness.cipher_key(randomness.check_key(make(1))), n_parties=3)
    np.testing.assert_array_equal(shared.shares, converted.shares)
    product = sjax.mul(shared, shared, make(2))
    converted_product = sjax.mul(converted, converted, randomness.cipher_key(randomness.check_key(make(2))))
    np.testing.assert_array_equal(product.shares, converted_product.shares)
    np.testing.assert_allclose(sjax.reveal(product), x * x, atol=1e-4)


def test_a_legacy_key_and_its_typed_key_give_the_same_shares():
    x = jnp.arange(6.0)
    a = sjax.share(x, jax.random.PRNGKey(9), n_parties=2)
    b = sjax.share(x, jax.random.wrap_key_data(jax.random.PRNGKey(9)), n_parties=2)
    np.testing.assert_array_equal(a.shares, b.shares)


def test_same_threefry_key_gives_bit_identical_results_and_reuse_is_caught():
    x = sjax.share(jnp.array([0.5, -3.0]), jax.random.key(11), n_parties=2)
    first = sjax.relu(x, jax.random.key(12))
    second = jax.jit(sjax.relu)(x, jax.random.key(12))
    np.testing.assert_array_equal(first.shares, second.shares)
    key = jax.random.key(13)
    sjax.mul(x, x, key)
    with pytest.raises(jax.errors.KeyReuseError):
        sjax.mul(x, x, key)


def test_a_function_that_draws_nothing_leaves_the_key_unused():
    # Conversion happens where randomness is drawn: a secure function with no product does not consume.
    x = sjax.share(jnp.array([1.0, 2.0]), jax.random.key(14), n_parties=2)
    key = jax.random.key(15)
    y = sjax.secure(lambda v: v + v + 1.0)(x, key=key)
    np.testing.assert_allclose(sjax.reveal(y), [3.0, 5.0], atol=1e-4)
    sjax.mul(x, x, key)  # the key's first use


@pytest.mark.parametrize("bit_width, dtype", [(8, jnp.uint8), (32, jnp.uint32), (64, jnp.uint64)])
def test_a_long_draw_computed_in_chunks_is_the_keystream(monkeypatch, bit_width, dtype):
    # Chunks of 3 blocks (a draw of 7 blocks takes 3 chunks, padded by 2 blocks): the values are the
    # RFC-order keystream of the key, whatever the chunking.
    def key():
        return jax.random.key(6, impl=prg.CHACHA20)

    words_per_value = 2 if bit_width == 64 else 1
    count = (7 * 16 - 5) // words_per_value
    whole = np.asarray(prg.block(jax.random.key_data(key()), jnp.arange(7, dtype=jnp.uint32), (0, 0, 0)))
    whole = whole.reshape(-1)
    words = whole[: count * words_per_value].astype(np.uint64)
    if bit_width == 64:
        expected = words[0::2] | (words[1::2] << np.uint64(32))
    else:
        expected = words.astype(dtype)
    monkeypatch.setattr(prg, "CHUNK_BLOCKS", 3)
    drawn = jax.jit(lambda k: jax.random.bits(k, (count,), dtype))(key())
    np.testing.assert_array_equal(np.asarray(drawn), expected)
    monkeypatch.setattr(prg, "CHUNK_BLOCKS", 1000)
    np.testing.assert_array_equal(np.asarray(jax.random.bits(key(), (count,), dtype)), expected)
