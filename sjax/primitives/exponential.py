"""The exponential, by exact range reduction: ``exp(x) = 2^(x log2 e) = 2^k * 2^r``.

With ``f`` fractional bits, ``t = x * log2(e) + f`` is formed exactly at 56 fractional bits (a local
product with a 40-bit ``log2 e``). One truncation of ``t`` by 56 bits gives the integer ``k`` (``floor(t)``
or ``floor(t) + 1``: stochastic rounding), and with it, at no extra round, ``k mod 64 = C - rho``: the
truncation's public part ``C`` minus the low bits ``rho`` of the dealer's mask. The dealer supplies
one-hot vectors of ``rho``'s two octal digits (8 + 8 words; one table of 64 cost four times the material),
which give ``2^k = A V0 + B V1`` from four values linear in them (the low digit, with the borrow into the
high one, in ``A`` and ``B``; the high digit in ``V0`` and ``V1``): two products in one round, beside the
polynomial's first. So ``2^k`` is exact, and ``r = t - k`` lies in ``(-1, 1)``, where ``2^r`` is a
degree-6 polynomial (relative error 5.0e-7) at 30 bits, evaluated with one fused round per level of powers
(:func:`sjax.primitives.fixed.fused_polynomial`). Then ``2^k * 2^r = exp(x) * 2^f`` is already the
encoded result: the relative error is set by an 18-bit mantissa and the final rounding, about 1.5e-5,
whatever the magnitude of ``x``. The out-of-domain flags come from two sign bits of ``x`` computed
alongside; their conversion to arithmetic shares, the last truncation and the product with the result
share the last round. Compare
CrypTen (0.12 at x = 8, 8 rounds) and SPU (0.115).
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
from sjax.primitives.binary import sign_word_body
from sjax.shares import ArithShare

__all__ = ["exp", "exp_body", "exp_domain"]

_T_SCALE = 56  # fractional bits of t = x log2 e, exact (no truncation)
_POLY_SCALE = 30
_MANTISSA_BITS = 18  # fractional bits of 2^r in the final product: 2^(t' + 18) < 2^62
_DIGIT = 3  # k mod 64 as two octal digits: one-hots of 8 + 8 words instead of 64
_EXP2_COEFFICIENTS = fit(lambda r: 2.0**r, -1.0, 1.0, 6)  # relative error 5.0e-7 on (-1, 1), 3 rounds


def exp_domain(frac_bits: int, out_scale: int | None = None) -> tuple[float, float]:
    """``(low, high)``: below ``low`` exp is under half a unit in the last place and returns 0; above
    ``high`` the result would overflow the exact product and saturates at ``exp(high)``."""
    out_scale = frac_bits if out_scale is None else out_scale
    # Margins of 2^-10 keep t' = x log2 e + out_scale inside [0, 64) despite the rounding of the bounds
    # and of t'; within the lower margin the true value is below one unit in the last place anyway.
    low = -out_scale * math.log(2.0) + 2.0**-10
    high = (62 - _MANTISSA_BITS - out_scale) * math.log(2.0) - 2.0**-10
    return low, high


def exp_pending(
    x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int, mantissa_bits: int
) -> jax.Array:
    """``exp(x) * 2^(out_scale + mantissa_bits)`` as a ring value whose truncation by ``mantissa_bits``
    is the result at ``out_scale``, for ``x`` inside :func:`exp_domain` (garbage outside it).

    Cost: 5 rounds (the truncation of ``t``, 3 for the polynomial with ``2^k``'s products beside the
    first, the product ``2^r * 2^k``).
    """
    k_key, poly_key, power_key, product_key = randomness.split(key, 4)
    if frac_bits > 40:
        raise ValueError(f"exp supports up to 40 fractional bits, got {frac_bits}")
    # t' = x log2(e) + out_scale at 56 bits: 2^t' = exp(x) * 2^out_scale, and 0 <= t' < 64 in the domain.
    t = x * fixed.encode_scalar(math.log2(math.e), _T_SCALE - frac_bits)
    t = t + fixed.constant(float(out_scale), _T_SCALE, x.shape)
    pending_t = fixed.pending(t, _T_SCALE, digits=(_DIGIT, _DIGIT))
    (k,), _, onehots = fixed.fused_round([pending_t], [], k_key)
    r = t - (k << np.uint64(_T_SCALE))  # in (-1, 1) at 56 bits
    mantissa = fixed.fused_polynomial(
        fixed.pending(r, _T_SCALE - _POLY_SCALE), _EXP2_COEFFICIENTS, poly_key, scale=_POLY_SCALE
    )
    # 2^k in one round beside the polynomial's first: no extra round.
    low_weighted, high_weighted = _power_of_two_factors(*onehots[0])
    _, products, _ = fixed.fused_round(
        [fixed.plain(f) for f in (*low_weighted, *high_weighted)], [(0, 2), (1, 3)], power_key
    )
    power = products[0] + products[1]
    _, (product,), _ = fixed.fused_round(
        [fixed.pending(mantissa, 2 * _POLY_SCALE - mantissa_bits), fixed.plain(power)], [(0, 1)], product_key
    )
    return product


def _power_of_two_factors(c: jax.Array, onehots: list[jax.Array]):
    """``((A, B), (V0, V1))`` with ``2^k = A V0 + B V1`` for ``k = c - rho`` modulo 64, from the public
    ``c`` and this party's shares of the one-hots of ``rho``'s two octal digits ``rho_0``, ``rho_1``
    (all four linear in the one-hots: local).

    With ``c = 8 c_1 + c_0`` and the borrow ``b = [c_0 < rho_0]``: ``k = 8 ((c_1 - rho_1 - b) mod 8) +
    (c_0 - rho_0 + 8 b)``. ``A = [not b] 2^(c_0 - rho_0)`` and ``B = [b] 2^(c_0 - rho_0 + 8)`` are public
    functions of ``rho_0``, ``V0 = 2^(8 ((c_1 - rho_1) mod 8))`` and ``V1 = 2^(8 ((c_1 - 1 - rho_1) mod 8))``
    public functions of ``rho_1``: each a dot product of a one-hot with a public table per element.
    """
    low, high = onehots
    digit = np.uint64((1 << _DIGIT) - 1)
    j = jnp.arange(1 << _DIGIT, dtype=jnp.uint64)
    c0, c1 = (c & digit)[..., None], ((c >> np.uint64(_DIGIT)) & digit)[..., None]
    one = np.uint64(1)
    no_borrow = j <= c0
    # Shift amounts wrap modulo 2^64 where unused; jnp.where keeps only the used entries.
    a_table = jnp.where(no_borrow, one << ((c0 - j) & np.uint64(63)), np.uint64(0))
    b_table = jnp.where(no_borrow, np.uint64(0), one << ((c0 + np.uint64(1 << _DIGIT) - j) & np.uint64(63)))
    v0_table = one << (np.uint64(1 << _DIGIT) * ((c1 - j) & digit))
    v1_table = one << (np.uint64(1 << _DIGIT) * ((c1 - one - j) & digit))
    dot = lambda onehot, table: (onehot * table).sum(-1)  # noqa: E731
    return (dot(low, a_table), dot(low, b_table)), (dot(high, v0_table), dot(high, v1_table))


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
    flags_key, core_key, final_key = randomness.split(key, 3)
    # Out-of-domain flags, computed alongside the main path: [x < low] and [x > high], as XOR bits.
    bounds = [x - fixed.constant(low, frac_bits)]
    if not nonpositive:
        bounds.append(fixed.constant(high, frac_bits) - x)
    flags = sign_word_body(jnp.stack(bounds), flags_key)
    product = exp_pending(x, core_key, frac_bits=frac_bits, out_scale=out_scale, mantissa_bits=mantissa_bits)
    # Last round: truncate the product, convert the flags, and multiply: (1 - below - above) y + above e^high.
    ops = [fixed.pending(product, mantissa_bits)] + [fixed.bit(f) for f in flags]
    (result, *bits), masked, _ = fixed.fused_round(ops, [(i, 0) for i in range(1, len(ops))], final_key)
    result = result - sum(masked)
    if nonpositive:
        return result
    return result + bits[1] * fixed.encode_scalar(math.exp(high), out_scale)


def exp(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``e**x``.

    Domain: accurate on ``[-f ln 2, (44 - f) ln 2 - 0.001]`` for ``f = frac_bits`` (``[-11.09, 19.41]`` for
    16 bits, covering the target ``[-16, 16]``: below -11.09 the true value is under half a unit in the last
    place and the result is 0). Above the domain the result saturates at ``exp(high)``; never NaN.

    Error: relative ``|y - e^x| / max(1, e^x)`` below 2.5e-5 on the domain: the final rounding (``2^-f``),
    one rounding of an 18-bit mantissa in ``(0.5, 2)`` (relative ``2^-17`` at most) and 5e-7 from the
    polynomial; 1.5e-5 measured.

    Cost: 8 rounds (the 7 of the two sign bits for the domain flags, with the rest alongside, then one
    fused round); each party sends ``204 * (n - 1)`` bytes per element; the dealer sends ``470`` bytes
    per element (sizes a multiple of 32: the two sign bits per element fill whole blocks of 64, see
    :mod:`sjax.bits`).
    """
    return run_unary("exp", exp_body, x, key)
