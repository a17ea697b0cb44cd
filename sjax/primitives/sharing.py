"""Sharing secrets and revealing results.

Leakage: :func:`reveal` reveals its argument to every party, by definition; :func:`share` reveals nothing
(every share alone is uniform over Z_2^64 whatever the secret).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness, ring
from sjax.parallel import simulate
from sjax.shares import ArithShare, BinShare

__all__ = ["share", "share_bits", "reveal", "share_body", "reveal_body"]


def _check_n_parties(n_parties: object) -> int:
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)):
        raise TypeError(f"n_parties must be an int, got {type(n_parties).__name__}")
    if n_parties < 2:
        raise ValueError(f"n_parties must be at least 2, got {n_parties}")
    return int(n_parties)


def _plaintext(x: object) -> jax.Array:
    if isinstance(x, (ArithShare, BinShare)):
        raise TypeError(f"share takes a plaintext array, got a {type(x).__name__} (it is already shared)")
    if isinstance(x, int) and not isinstance(x, bool) and not -(2**63) <= x < 2**63:
        raise ValueError(f"value {x} is outside the representable range (it does not even fit in int64)")
    try:
        array = jnp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"share takes a numeric array, got {type(x).__name__}") from None
    if not (jnp.issubdtype(array.dtype, jnp.number) or array.dtype == jnp.bool_):
        raise TypeError(f"share takes a numeric array, got dtype {array.dtype}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError("complex values cannot be shared; share the real and imaginary parts")
    return array


def _check_range(x: jax.Array, frac_bits: int) -> None:
    """Rejects NaN, infinities and values the ring cannot hold, when ``x`` is concrete."""
    if isinstance(x, jax.core.Tracer):
        return  # A traced value has no value yet; see sjax.ring for what happens outside the range.
    values = np.asarray(x)
    if jnp.issubdtype(values.dtype, jnp.floating):
        if not np.isfinite(values).all():
            raise ValueError("cannot share NaN or infinite values")
        too_large = np.abs(values.astype(np.float64)) >= ring.max_abs(frac_bits)
    else:
        # Integers compare exactly: float64 would round values near the bound up to it.
        bound = 2 ** (63 - frac_bits)
        wide = values.astype(object)
        too_large = (wide >= bound) | (wide <= -bound)
    if too_large.any():
        worst = values.flat[int(np.argmax(too_large))]
        raise ValueError(
            f"value {worst} is outside the representable range |x| < 2^{63 - frac_bits} "
            f"for frac_bits={frac_bits}"
        )


def share_body(encoded: jax.Array, key: jax.Array, *, owner: int = 0) -> jax.Array:
    """One party's share of ``encoded``, a value held by party ``owner``.

    Cost: 0 rounds, 0 bytes: every mask comes from a seed the owner shares with that party.
    """
    masks = randomness.owner_masks(key, encoded.shape, owner=owner)
    return jnp.where(comm.party_index() == owner, masks + encoded, masks)


def share(x, key: jax.Array, n_parties: int = 2, frac_bits: int = ring.DEFAULT_FRAC_BITS) -> ArithShare:
    """Encodes a plaintext array as fixed point and splits it into ``n_parties`` additive shares.

    Each share alone is uniform over Z_2^64, whatever ``x`` is; any ``n_parties - 1`` shares together are
    independent of ``x``.

    Args:
        x: a float, int or bool array (or anything ``jnp.asarray`` takes).
        key: a PRNG key, used once.
        n_parties: number of parties, at least 2.
        frac_bits: fractional bits of the encoding, in ``[0, 30]``.

    Returns:
        An :class:`ArithShare` of ``x``'s shape.

    Raises:
        TypeError: ``x`` is not numeric, or ``key`` is not a key.
        ValueError: ``n_parties < 2``, ``frac_bits`` out of range, or (for concrete ``x``) NaN, infinite
            values or ``|x| >= 2**(63 - frac_bits)``. Traced values are not checked; outside the range they
            wrap around.

    Cost: 0 rounds, 0 bytes (the input owner derives the masks from seeds shared pairwise).
    """
    n_parties = _check_n_parties(n_parties)
    frac_bits = ring.check_frac_bits(frac_bits)
    key = randomness.check_key(key)
    array = _plaintext(x)
    if array.dtype == ring.RING_DTYPE:
        raise TypeError(
            "share takes plaintext numbers; uint64 arrays look like ring elements and are ambiguous: "
            "pass int64 or float values (sjax.share_bits takes uint64 words)"
        )
    _check_range(array, frac_bits)
    encoded = ring.encode(array, frac_bits)
    stacked = _run_n(share_body, n_parties, (encoded, key))
    return ArithShare(stacked, frac_bits=frac_bits)


def share_bits(x, key: jax.Array, n_parties: int = 2) -> BinShare:
    """XOR-shares the 64-bit words of an integer array (two's complement for signed values).

    Cost: 0 rounds, 0 bytes.
    """
    n_parties = _check_n_parties(n_parties)
    key = randomness.check_key(key)
    array = _plaintext(x)
    if not (jnp.issubdtype(array.dtype, jnp.integer) or array.dtype == jnp.bool_):
        raise TypeError(f"share_bits takes an integer array, got dtype {array.dtype}")
    words = array if array.dtype == ring.RING_DTYPE else array.astype(jnp.int64).astype(ring.RING_DTYPE)

    def body(words, key):
        masks = randomness.owner_masks(key, words.shape, xor=True)
        return jnp.where(comm.party_index() == 0, masks ^ words, masks)

    return BinShare(_run_n(body, n_parties, (words, key)))


def _run_n(body, n_parties: int, replicated: tuple) -> jax.Array:
    """Runs a body that takes only replicated inputs once for each of ``n_parties`` parties."""
    placeholder = jnp.zeros((n_parties,), dtype=jnp.uint8)
    return simulate.run(lambda _, *r: body(*r), (placeholder,), replicated)


def reveal_body(x: jax.Array, *, frac_bits: int) -> jax.Array:
    """Every party's view of the opened, decoded value. Cost: 1 round, ``8 * (n - 1) * size`` bytes each."""
    (opened,) = comm.open_shares(x)
    return ring.decode(opened, frac_bits)


def reveal(s: ArithShare | BinShare) -> jax.Array:
    """Reconstructs a secret and reveals it to every party.

    Args:
        s: an :class:`ArithShare` (decoded to ``float64``: exact up to ``2^(53 - frac_bits)`` in magnitude,
            about 1.4e11 for 16 bits, and to 53 significant bits beyond) or a :class:`BinShare` (returned
            as ``uint64`` words).

    Cost: 1 round; each party sends ``8 * (n_parties - 1) * size`` bytes.
    """
    if isinstance(s, ArithShare):
        body = functools.partial(reveal_body, frac_bits=s.frac_bits)
        return simulate.run(body, (s.shares,), out="public")
    if isinstance(s, BinShare):
        return simulate.run(lambda x: comm.open_bits(x)[0], (s.shares,), out="public")
    raise TypeError(f"reveal takes an ArithShare or a BinShare, got {type(s).__name__}")
