"""The exponential, by exact range reduction: ``exp(x) = 2^(x log2 e) = 2^k * 2^r``.

With ``f`` fractional bits, ``t = x * log2(e) + f`` is computed at 30 fractional bits and decomposed into
bits (A2B): its integer part ``k`` gives ``2^k`` exactly as a product of ``1 + (2^(2^j) - 1) b_j`` over its
bits, its fraction ``r`` in ``[0, 1)`` gives ``2^r`` by a degree-4 polynomial (relative error 3.8e-6) at
30 bits. Then ``2^k * 2^r = exp(x) * 2^f`` is already the encoded result: the relative error is set by
``2^r``'s polynomial and 17 bits, about 1e-5, whatever the magnitude of ``x``. Compare CrypTen (0.12 at
x = 8) and SPU (0.115).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax.primitives import fixed
from sjax.primitives._fit import fit
from sjax.primitives._unary import run_unary
from sjax.primitives.binary import msb_body
from sjax.shares import ArithShare

__all__ = ["exp", "exp_body", "exp_domain"]

_T_SCALE = 30  # fractional bits of t = x log2 e
_FACTOR_BITS = 40  # fractional bits of the public log2(e)
_POLY_SCALE = 30
_MANTISSA_BITS = 17  # fractional bits of 2^r in the final product
_EXP2_COEFFICIENTS = fit(lambda r: 2.0**r, 0.0, 1.0, 4)  # relative error 3.8e-6, 2 levels of powers


def exp_domain(frac_bits: int, out_scale: int | None = None) -> tuple[float, float]:
    """``(low, high)``: below ``low`` exp is under half a unit in the last place and returns 0; above
    ``high`` the result would overflow the exact product and saturates at ``exp(high)``."""
    out_scale = frac_bits if out_scale is None else out_scale
    # Margins of 2^-10 keep t' = x log2 e + out_scale inside [0, 64) despite the rounding of the bounds
    # and of t'; within the lower margin the true value is below one unit in the last place anyway.
    low = -out_scale * math.log(2.0) + 2.0**-10
    high = (61 - _MANTISSA_BITS - out_scale) * math.log(2.0) - 2.0**-10
    return low, high


def exp_body(
    x: jax.Array,
    key: jax.Array,
    *,
    frac_bits: int,
    out_scale: int | None = None,
    nonpositive: bool = False,
) -> jax.Array:
    """One party's share of ``exp(x)``: ``x`` at scale ``frac_bits``, the result at ``out_scale``.

    With ``nonpositive=True`` the caller guarantees ``x <= 0`` (as in softmax after subtracting the
    maximum): the result is below 1, so the mantissa can carry ``min(30, 61 - out_scale)`` bits and no
    upper clip is needed. See :func:`exp` for domain, error and cost.
    """
    out_scale = frac_bits if out_scale is None else out_scale
    low, high = exp_domain(frac_bits, out_scale)
    mantissa_bits = min(30, 61 - out_scale) if nonpositive else _MANTISSA_BITS
    flags_key, t_key, bits_key, b2a_key, poly_key, tree_key, product_key = randomness.split(key, 7)
    # Out-of-domain flags, computed alongside the main path: [x < low] and [x > high].
    bounds = [x - fixed.constant(low, frac_bits)]
    if not nonpositive:
        bounds.append(fixed.constant(high, frac_bits) - x)
    outside = msb_body(jnp.stack(bounds), flags_key)
    below = outside[0]
    above = outside[1] if not nonpositive else None

    # t' = x log2(e) + out_scale at 30 bits: 2^t' = exp(x) * 2^out_scale, and t' >= 0 inside the domain.
    t = fixed.public_scale(
        x, math.log2(math.e), t_key, in_scale=frac_bits, out_scale=_T_SCALE, factor_bits=_FACTOR_BITS
    )
    t = t + fixed.constant(float(out_scale), _T_SCALE)
    integer_bits = list(range(_T_SCALE, _T_SCALE + 6))  # k' < 64
    bits = fixed.bits_to_arith(fixed.bits_of(t, bits_key), integer_bits, b2a_key)
    powers_of_two = np.array([1 << p for p in integer_bits], dtype=np.uint64)
    fraction = t - (bits * powers_of_two).sum(axis=-1)  # r in [0, 1) at 30 bits

    mantissa = fixed.polynomial(
        fraction, _EXP2_COEFFICIENTS, poly_key, scale=_POLY_SCALE, out_scale=mantissa_bits
    )
    # [inside] * 2^k' = [inside] * prod_j (1 + (2^(2^j) - 1) b_j), exact integers: a product tree without
    # truncation. The domain flag rides in the tree, so out-of-domain garbage is zeroed at no extra round.
    inside = fixed.constant(1.0, 0, x.shape) - below - (above if above is not None else 0)
    factors = [inside] + [
        fixed.constant(1.0, 0, x.shape) + bits[..., j] * np.uint64((1 << (1 << j)) - 1) for j in range(6)
    ]
    tree_keys = randomness.split(tree_key, 3)
    for level_key in tree_keys:
        pairs = list(zip(factors[0::2], factors[1::2]))
        products = fixed.mul_many(pairs, level_key, shift=0)
        factors = products + (factors[-1:] if len(factors) % 2 else [])
    (power,) = factors
    result = fixed.mul(mantissa, power, product_key, shift=mantissa_bits)
    # Below the domain the result is 0; above it, exp(high).
    if above is None:
        return result
    return result + above * fixed.encode_scalar(math.exp(high), out_scale)


def exp(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``e**x``.

    Domain: accurate on ``[-f ln 2, (44 - f) ln 2 - 0.001]`` for ``f = frac_bits`` (``[-11.09, 19.41]`` for
    16 bits, covering the target ``[-16, 16]``: below -11.09 the true value is under half a unit in the last
    place and the result is 0). Above the domain the result saturates at ``exp(high)``; never NaN.

    Error: relative ``|y - e^x| / max(1, e^x)`` below 2e-5 on the domain (one rounding of a 17-bit mantissa
    and the final truncation).

    Cost: 16 rounds; each party sends ``824 * (n - 1)`` bytes per element; the dealer
    sends ``528`` bytes per element.
    """
    return run_unary("exp", exp_body, x, key)
