"""``x ** p`` for a public exponent ``p``.

* integer ``p >= 0``: square-and-multiply on shares (exact products, one truncation each);
* integer ``p < 0``: the power ``-p`` of the reciprocal of ``x``;
* fractional ``p``: ``exp(p * log x)`` for ``x > 0``.

Leakage: none (the exponent is public).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from sjax import randomness
from sjax import parallel
from sjax.primitives import fixed
from sjax.primitives.exponential import exp_body
from sjax.primitives.normalize import log_body, reciprocal_body
from sjax.shares import ArithShare

__all__ = ["pow"]



def _integer_power_body(x: jax.Array, key: jax.Array, *, exponent: int, frac_bits: int) -> jax.Array:
    """``x ** exponent`` for an integer ``exponent >= 1`` by square-and-multiply, ``2 * bit_length`` products."""
    bits = bin(exponent)[2:]
    keys = randomness.split(key, 2 * len(bits))
    result = x
    for i, bit in enumerate(bits[1:]):
        result = fixed.mul(result, result, keys[2 * i], shift=frac_bits)
        if bit == "1":
            result = fixed.mul(result, x, keys[2 * i + 1], shift=frac_bits)
    return result


def pow_body(x: jax.Array, key: jax.Array, *, exponent: float, frac_bits: int) -> jax.Array:
    """One party's share of ``x ** exponent`` at scale ``frac_bits``. See :func:`pow`."""
    if float(exponent).is_integer():
        p = int(exponent)
        if p == 0:
            return fixed.constant(1.0, frac_bits, x.shape)
        power_key, inverse_key = randomness.split(key, 2)
        # For p < 0 invert first: 1/x keeps 29 significant bits where a small x ** |p| would not.
        base = x if p > 0 else reciprocal_body(x, inverse_key, frac_bits=frac_bits)
        return _integer_power_body(base, power_key, exponent=abs(p), frac_bits=frac_bits)
    log_key, exp_key = randomness.split(key, 2)
    # p log x in one piece: the exponent multiplies the logarithm's coefficients.
    scaled = log_body(x, log_key, frac_bits=frac_bits, factor=float(exponent))
    return exp_body(scaled, exp_key, frac_bits=frac_bits)


def pow(x: ArithShare, exponent: float, key: jax.Array) -> ArithShare:  # noqa: A001  (mirrors jnp.power)
    """Elementwise ``x ** exponent`` for a public real ``exponent``.

    Integer exponents work for any sign of ``x``: ``p >= 1`` by square-and-multiply (each product
    truncated once, so the relative error grows like ``p 2^-f``; domain: every intermediate power below
    ``2^(31 - f)`` in magnitude), ``p = 0`` gives 1, ``p < 0`` the power ``-p`` of :func:`sjax.reciprocal`.
    Fractional exponents take ``exp(p log x)`` and need ``x > 0`` (for ``x <= 0`` the result is finite
    but meaningless); ``p log x`` comes out of the logarithm in one piece (``p`` multiplies its
    coefficients), rounded to ``2^-f``, so the relative error is about ``2^-f`` plus exp's.

    Cost: integer ``p``: 2 rounds and ``24 * (n - 1)`` bytes per element for each squaring and each
    multiply (``p = 3``: 4 rounds), plus 15 rounds for a negative exponent (the reciprocal's); fractional
    ``p``: 22 rounds, ``492 * (n - 1)`` bytes per element (for a multiple of 32 elements: exp's two sign
    bits per element fill whole blocks of 64, see :mod:`sjax.bits`).
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"pow takes an ArithShare, got {type(x).__name__}")
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.integer, np.floating)):
        raise TypeError(f"pow takes a public real exponent, got {type(exponent).__name__}")
    if not np.isfinite(exponent):
        raise ValueError(f"the exponent must be finite, got {exponent}")
    key = randomness.check_key(key)
    body = functools.partial(pow_body, exponent=float(exponent), frac_bits=x.frac_bits)
    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=x.frac_bits)
