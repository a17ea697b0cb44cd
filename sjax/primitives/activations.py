"""Activations built on the exponential: sigmoid, tanh, silu, erf, gelu.

Each works on ``a = |x|`` and restores the sign at the end, so the exponentials it needs are of
non-positive arguments: ``exp(-a)`` lies in ``(0, 1]`` and is computed with a 30-bit mantissa (relative
error 5e-7 from exp's polynomial; 0 once ``exp(-a) < 2^-30``).

* ``sigmoid(a) = 1 / (1 + exp(-a))``: the denominator lies in ``(1, 2]``, so its reciprocal is one
  polynomial (degree 12, error 2e-10) with no normalisation; ``sigmoid(-a) = 1 - sigmoid(a)``. The
  products run in fused rounds (see :func:`_sigmoid_pieces`): 18 rounds in all.
* ``tanh(x) = 2 sigmoid(2x) - 1``.
* ``silu(x) = x * sigmoid(x)``.
* ``erf(a) = 1 - exp(-a^2) * erfcx(a)`` for ``a`` in ``[0, 6]`` (``a`` clipped at 6, where
  ``erfc(6) = 2e-17``), with the smooth, bounded ``erfcx`` by a degree-16 polynomial (absolute error
  1.3e-7); odd.
* ``gelu(x) = x (1 + erf(x / sqrt 2)) / 2``; for negative ``x`` it uses ``1 + erf(-a) = erfc(a)``
  directly, so tiny values keep their relative accuracy.

Leakage: none.
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
from sjax.primitives.binary import msb_body, sign_word_body
from sjax.primitives.exponential import exp_body, exp_domain, exp_pending
from sjax.shares import ArithShare

__all__ = ["sigmoid", "tanh", "silu", "erf", "gelu"]

_SCALE = 30  # fractional bits of exp(-a) and of 1 + exp(-a)
_POLY_SCALE = 29
_RECIPROCAL = fit(lambda u: 1.0 / (u + 1.5), -0.5, 0.5, 12)  # error 1.9e-10: silu multiplies it by |x|
_ERF_CLIP = 6.0
_ERFCX = fit(
    np.vectorize(lambda v: math.exp((3 * v + 3) ** 2) * math.erfc(3 * v + 3)), -1.0, 1.0, 16
)


def _sign_and_magnitude(x: jax.Array, key: jax.Array, *, extra_bounds=()) -> tuple:
    """Integer bits ``[x < 0]`` and ``[bound_i(x) < 0]`` in one sign extraction (8 rounds), and
    ``1 - 2 [x < 0]``."""
    bits = msb_body(jnp.stack([x, *extra_bounds]), key)
    negative = bits[0]
    return negative, bits[1:], fixed.constant(1.0, 0, x.shape) - negative * np.uint64(2)


def _sigmoid_pieces(x: jax.Array, key: jax.Array, *, frac_bits: int):
    """``(s, p)``: the integer sign bit ``s = [x < 0]`` and ``p``, a ring value at 60 bits (not truncated)
    of ``sigmoid(|x|)``, so that ``sigmoid(x) = p + s (1 - 2 p)``. 17 rounds.

    Three sign bits of ``x`` (7 rounds): ``[x < 0]``, ``[x < -B]`` and ``[x > B]``, ``B = 30 ln 2``,
    beyond which ``exp(-|x|) < 2^-30`` counts as 0; one fused round converts them and forms ``|x|``;
    ``e = exp(-|x|)`` at 30 bits (5 rounds), times the flag ``|x| <= B`` at no extra round (exp is
    garbage beyond its domain); ``1 / (1 + e)`` is a degree-12 polynomial in ``e - 1/2`` (4 fused
    rounds, the first truncating ``e``). One exponential where running ``exp(x)`` and ``exp(-x)`` side by
    side would save the round of ``|x|`` and four more, but cost twice the dealer's words, which set the
    run time.
    """
    flags_key, magnitude_key, exp_key, poly_key = randomness.split(key, 4)
    low, _ = exp_domain(frac_bits, _SCALE)
    bound = fixed.constant(-low, frac_bits, x.shape)
    flags = sign_word_body(jnp.stack([x, x + bound, bound - x]), flags_key)
    ops = [fixed.bit(f) for f in flags] + [fixed.plain(x)]
    (s, below, above, _), (signed_x,), _ = fixed.fused_round(ops, [(0, 3)], magnitude_key)
    inside = fixed.constant(1.0, 0, x.shape) - below - above
    mantissa_bits = 61 - _SCALE
    e = exp_pending(  # of -|x| = 2 s x - x
        signed_x * np.uint64(2) - x, exp_key, frac_bits=frac_bits, out_scale=_SCALE,
        mantissa_bits=mantissa_bits, factor=inside,
    )
    # 1 + e in (1, 2]; u = (1 + e) - 1.5 = e - 1/2, truncated to 30 bits in the polynomial's first round.
    u = e - fixed.constant(0.5, _SCALE + mantissa_bits, x.shape)
    p = fixed.fused_polynomial(fixed.pending(u, mantissa_bits), _RECIPROCAL, poly_key, scale=_SCALE)
    return s, p


def sigmoid_body(x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None) -> jax.Array:
    """One party's share of ``sigmoid(x)``: ``x`` at scale ``frac_bits``, the result at ``out_scale``
    (default ``frac_bits``, at most 30). See :func:`sigmoid`."""
    out_scale = frac_bits if out_scale is None else out_scale
    pieces_key, select_key = randomness.split(key, 2)
    s, p = _sigmoid_pieces(x, pieces_key, frac_bits=frac_bits)
    # Last round: truncate p and select: p + s (1 - 2 p).
    (value, _), (product,), _ = fixed.fused_round(
        [fixed.pending(p, 2 * _SCALE - out_scale), fixed.plain(s)], [(0, 1)], select_key
    )
    return value + (s << np.uint64(out_scale)) - product * np.uint64(2)


def tanh_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``tanh(x)`` at scale ``frac_bits``. See :func:`tanh`."""
    # tanh(x) = 2 sigmoid(2x) - 1, with sigmoid carried at one more bit so the doubling keeps f bits.
    s = sigmoid_body(x * np.uint64(2), key, frac_bits=frac_bits, out_scale=frac_bits + 1)
    return s - fixed.constant(0.5, frac_bits + 1, x.shape)  # (2s - 1) at f bits = s - 1/2 at f + 1


def silu_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``x * sigmoid(x)`` at scale ``frac_bits``. See :func:`silu`."""
    pieces_key, xs_key, product_key, out_key = randomness.split(key, 4)
    s, p = _sigmoid_pieces(x, pieces_key, frac_bits=frac_bits)
    # x sigmoid(x) = x p + x s (1 - 2 p) = (x - 2 x s) p + x s: x s alongside the polynomial, then one
    # product with p truncated to 30 bits (so that its error does not grow with |x|), then the truncation.
    _, (xs,), _ = fixed.fused_round([fixed.plain(x), fixed.plain(s)], [(0, 1)], xs_key)
    _, (product,), _ = fixed.fused_round(
        [fixed.pending(p, _SCALE), fixed.plain(x - xs * np.uint64(2))], [(0, 1)], product_key
    )
    return fixed.rescale(product + (xs << np.uint64(_SCALE)), out_key, from_scale=frac_bits + _SCALE, to_scale=frac_bits)


def _erfc_of_magnitude(x: jax.Array, key: jax.Array, *, frac_bits: int):
    """``(negative, sign_factor, erfc(|x|))``, the last at scale ``_SCALE``. 30 rounds."""
    sign_key, clip_key, abs_key, square_key, exp_key, v_key, poly_key, product_key = randomness.split(key, 8)
    clip = fixed.constant(_ERF_CLIP, frac_bits, x.shape)
    negative, (above, below), sign_factor = _sign_and_magnitude(
        x, sign_key, extra_bounds=(clip - x, x + clip)
    )
    # a = min(|x|, 6): (1 - outside) * (1 - 2s) * x + 6 * outside.
    outside = above + below
    inside = fixed.constant(1.0, 0, x.shape) - outside
    (keep,) = fixed.mul_many([(inside, sign_factor)], clip_key, shift=0)
    (a,) = fixed.mul_many([(keep, x)], abs_key, shift=0)
    a = a + outside * fixed.encode_scalar(_ERF_CLIP, frac_bits)
    a_squared = fixed.mul(a, a, square_key, shift=frac_bits)
    e = exp_body(jnp.uint64(0) - a_squared, exp_key, frac_bits=frac_bits, out_scale=_SCALE, nonpositive=True)
    # v = (a - 3) / 3 in [-1, 1] for the erfcx polynomial.
    v = fixed.public_scale(
        a - fixed.constant(3.0, frac_bits, x.shape), 1.0 / 3.0, v_key,
        in_scale=frac_bits, out_scale=_POLY_SCALE, factor_bits=40,
    )
    scaled_erfcx = fixed.polynomial(v, _ERFCX, poly_key, scale=_POLY_SCALE, out_scale=_POLY_SCALE)
    erfc = fixed.mul(e, scaled_erfcx, product_key, shift=_POLY_SCALE)
    return negative, sign_factor, erfc


def erf_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``erf(x)`` at scale ``frac_bits``. See :func:`erf`."""
    core_key, sign_key, out_key = randomness.split(key, 3)
    _, sign_factor, erfc = _erfc_of_magnitude(x, core_key, frac_bits=frac_bits)
    magnitude = fixed.constant(1.0, _SCALE, x.shape) - erfc
    (signed,) = fixed.mul_many([(magnitude, sign_factor)], sign_key, shift=0)
    return fixed.rescale(signed, out_key, from_scale=_SCALE, to_scale=frac_bits)


def gelu_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``gelu(x)`` (the exact erf form) at scale ``frac_bits``. See :func:`gelu`."""
    scale_key, core_key, select_key, product_key = randomness.split(key, 4)
    # 24 bits for 1/sqrt(2) keep the product inside the truncation range for all of gelu's domain.
    y = fixed.public_scale(
        x, 1.0 / math.sqrt(2.0), scale_key, in_scale=frac_bits, out_scale=frac_bits, factor_bits=24
    )
    negative, _, erfc = _erfc_of_magnitude(y, core_key, frac_bits=frac_bits)
    # Phi = (1 + erf(y)) / 2 is erfc(|y|) / 2 for y < 0 and 1 - erfc(|y|) / 2 for y >= 0. Read at one more
    # fractional bit, erfc's ring value already is erfc / 2.
    half_erfc = erfc
    one = fixed.constant(1.0, _SCALE + 1, x.shape)
    (phi,) = fixed.select_many([negative], [(half_erfc, one - half_erfc)], select_key)
    return fixed.mul(x, phi, product_key, shift=_SCALE + 1)


def sigmoid(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise logistic function ``1 / (1 + e^-x)``.

    Domain: every representable ``x`` (the target ``[-30, 30]`` included). Beyond ``|x| = 30 ln 2``
    (20.8), where ``exp(-|x|) < 2^-30`` counts as 0, it saturates to 0 and 1 (within the error below).
    Error: absolute, below ``2^-f + 5e-7 s (1 - s) + 2e-10 <= 2^-f + 2e-7`` for the result ``s``: the
    final rounding, exp's polynomial (relative 5e-7 on ``exp(-|x|)``) and the reciprocal's (2e-10).
    Cost: 18 rounds; each party sends ``378 * (n - 1)`` bytes per element; the dealer
    sends ``813`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("sigmoid", sigmoid_body, x, key)


def tanh(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise hyperbolic tangent.

    Domain: every representable ``x`` (the target ``[-10, 10]`` included). Beyond ``|x| = 15 ln 2``
    (10.4) it saturates to -1 and 1 (within the error below).
    Error: absolute, below ``2^-f + 2e-6``: the final rounding, and twice the polynomial errors of the
    sigmoid of ``2|x|`` (see :func:`sigmoid`).
    Cost: 18 rounds; each party sends ``378 * (n - 1)`` bytes per element; the dealer
    sends ``813`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("tanh", tanh_body, x, key)


def silu(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``x * sigmoid(x)`` (swish).

    Domain: ``|x| < 2^(32 - f)`` (65536 for 16 bits; the target is ``[-10, 10]``). Beyond it the product
    leaves the truncation's range and the result is wrong (finite, never NaN).
    Error: absolute, below ``2^-f + 8.5e-7 + |x| (2^-30 + 2e-10)``: the final rounding, and ``|x|`` times
    the sigmoid's errors at 30 bits (its rounding, and its polynomials: see :func:`sigmoid`). That is
    1.6e-5 on the target and grows with ``|x|`` to 9e-5 at the end of the domain (6.1e-5 measured at
    ``x = -65000``, where the result is near 0).
    Cost: 19 rounds; each party sends ``402 * (n - 1)`` bytes per element; the dealer
    sends ``837`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("silu", silu_body, x, key)


def erf(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise error function.

    Domain: every representable ``x`` (the target ``[-5, 5]`` included). From ``|x| = sqrt(30 ln 2)``
    (4.56) on, where ``exp(-x^2) < 2^-30`` counts as 0, the result is exactly ``+-1`` (the true value
    differs by under 3e-10); ``|x|`` is clipped at 6.
    Error: absolute, below ``2^-f + erfc(|x|) (2^-f + 5e-7) + 1.3e-7 <= 2 * 2^-f + 7e-7`` (3.5e-5 for
    16 bits; 2.4e-5 measured): the final rounding; the rounding of ``x^2`` inside ``exp(-x^2)`` and exp's
    polynomial, both relative on ``erfc``; the erfcx polynomial.
    Cost: 24 rounds; each party sends ``752.375 * (n - 1)`` bytes per element; the dealer
    sends ``996`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("erf", erf_body, x, key)


def gelu(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise GELU in its exact form ``x (1 + erf(x / sqrt 2)) / 2``, as
    ``jax.nn.gelu(approximate=False)``.

    Domain: ``|x| < 2^(30 - f)`` (16384 for 16 bits; the target is ``[-10, 10]``). Beyond it the product
    leaves the truncation's range and the result is wrong (finite, never NaN). From ``|x| = sqrt(60 ln 2)``
    (6.45) on the result is exactly 0 or ``x`` (the true value differs by under 4e-10).
    Error: absolute, below ``1.52 * 2^-f + 7e-7`` (2.4e-5 for 16 bits): the final rounding; the roundings
    of ``x / sqrt 2`` and of its square inside ``exp``, which move the result by at most ``0.34 * 2^-f``
    and ``0.17 * 2^-f``; exp's polynomial (6.5e-7 at most) and erfcx's (4e-8).
    Cost: 26 rounds; each party sends ``776.375 * (n - 1)`` bytes per element; the dealer
    sends ``1020`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("gelu", gelu_body, x, key)
