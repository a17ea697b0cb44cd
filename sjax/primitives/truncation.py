"""Truncation: dividing a shared fixed-point value by a power of two, correct for any number of parties.

Method: probabilistic truncation over Z_2^k of Escudero, Ghosh, Keller, Rachuri and Scholl (CRYPTO 2020,
section 5.1), with a dealer-made triple ``(r, (r mod 2^63) >> m, r >> 63)``. The parties open
``c = x + 2^62 + r``; the most significant bits of ``c`` and ``r`` together tell whether the low 63 bits
wrapped, so the result is right for every ``|x| < 2^62`` and any number of parties. (Local truncation of each
share, as in SecureML and CrypTen, is correct for two parties only, and even then fails with probability
about ``|x| / 2^64``.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness
from sjax import parallel
from sjax.shares import ArithShare

__all__ = ["truncate", "truncate_body", "TRUNCATION_BOUND_BITS"]

TRUNCATION_BOUND_BITS = 62
"""Truncation is exact (up to the last bit) for ring values with ``|x| < 2^62``."""

_OFFSET = np.uint64(1 << TRUNCATION_BOUND_BITS)
_LOW_63 = np.uint64(2**63 - 1)


def truncate_body(
    x: jax.Array,
    key: jax.Array | None,
    *,
    bits: int,
    triple: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """One party's step of the truncation: its share of ``x >> bits`` (arithmetic shift of the secret).

    Domain: the secret ring value ``x`` (a two's-complement integer) must satisfy ``|x| < 2^62``.
    Result: ``floor(x / 2^bits) + u`` where ``u`` is 0 or 1, 1 with probability ``(x mod 2^bits) / 2^bits``
    (stochastic rounding: the expected result is exactly ``x / 2^bits``). There is no other failure: the
    probability of a large error is 0 inside the domain. Outside it the result wraps around.

    Cost: 1 round; each party sends ``8 * (n_parties - 1) * size`` bytes; one truncation triple per element
    (the dealer sends ``16 * size`` bytes to party 0).

    Leakage: none; the opened ``c = x + 2^62 + r`` is uniform because ``r`` is.

    ``triple`` is this party's share of a truncation triple for ``bits`` made together with other
    correlations (see :func:`sjax.randomness.beaver_with_truncation`); without it one is drawn from ``key``.
    """
    if bits == 0:
        return x
    if not 0 < bits < TRUNCATION_BOUND_BITS:
        raise ValueError(f"can truncate by 0 to {TRUNCATION_BOUND_BITS - 1} bits, got {bits}")
    if triple is None:
        triple = randomness.truncation_triple(key, x.shape, bits)
    r, r_low_shifted, r_msb = triple
    first = comm.is_first_party()
    (c,) = comm.open_shares(x + jnp.where(first, _OFFSET, jnp.uint64(0)) + r)
    c_msb = c >> np.uint64(63)
    c_low = c & _LOW_63
    # With x' = x + 2^62 in [0, 2^63): x' = c_low - r_low + t * 2^63, where the wrap bit t = c_msb XOR r_msb
    # is linear in the shared r_msb because c_msb is public.
    top = np.uint64(63 - bits)
    public_part = (c_low >> np.uint64(bits)) - (_OFFSET >> np.uint64(bits)) + (c_msb << top)
    wrap = r_msb * (jnp.uint64(1) - jnp.uint64(2) * c_msb)
    return jnp.where(first, public_part, jnp.uint64(0)) - r_low_shifted + (wrap << top)


def truncate(x: ArithShare, key: jax.Array, bits: int | None = None) -> ArithShare:
    """Divides a secret by ``2**bits`` (by default its ``frac_bits``), keeping its fixed-point scale.

    This is the step that follows every product of two fixed-point values; it is public for protocols and
    for dividing by powers of two.

    Domain: the underlying ring value must satisfy ``|x| < 2^62``, i.e. ``|value| < 2^(62 - frac_bits)``.
    Error: less than one unit in the last place (``2**-frac_bits``), stochastically rounded; probability of
    a larger error: 0 inside the domain, for any number of parties.

    Cost: 1 round; each party sends ``8 * (n_parties - 1) * size`` bytes; one truncation triple per element
    (the dealer sends ``16 * size`` bytes offline to party 0).

    Args:
        x: the share to divide.
        key: a PRNG key, used once.
        bits: how many bits to shift by, in ``[0, 61]``; defaults to ``x.frac_bits``.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"truncate takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    bits = x.frac_bits if bits is None else bits
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    if not 0 <= bits < TRUNCATION_BOUND_BITS:
        raise ValueError(f"bits must be in [0, {TRUNCATION_BOUND_BITS - 1}], got {bits}")
    body = functools.partial(truncate_body, bits=int(bits))
    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=x.frac_bits)
