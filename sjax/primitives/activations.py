"""Activations: sigmoid, tanh, silu, erf, gelu.

Each works on ``a = |x|`` and restores the sign at the end.

* ``sigmoid(a)`` by segments of ``a``: ``[0, 2]``, ``[2, 4]``, ``[4, 8]``, ``[8, 16]`` and ``[16, 32]``,
  each with a degree-7 polynomial in its own variable ``(a - centre) / half`` (errors below 1.7e-7), and
  1 from 32 on; ``sigmoid(-a) = 1 - sigmoid(a)``. The segment's bits come from one sign computation on
  ``a - t`` for the five ends ``t``, and the polynomial's coefficients are linear in them (see
  :func:`_sigmoid_pieces`): 20 rounds in all. Five sign bits cost less than the exponential and the
  reciprocal's polynomial that ``1 / (1 + exp(-a))`` would take: 482 dealer bytes per element against
  813, and 13 to 17% less time.
* ``tanh(x) = 2 sigmoid(2x) - 1``.
* ``silu(x) = x * sigmoid(x)``.
* ``erf(a) = 1 - exp(-a^2) * erfcx(a)`` for ``a`` in ``[0, 6]`` (``a`` clipped at 6, where
  ``erfc(6) = 2e-17``), with the smooth, bounded ``erfcx`` by a degree-16 polynomial (absolute error
  1.3e-7); odd. ``exp(-a^2)`` lies in ``(0, 1]`` and carries a 30-bit mantissa (relative error 5e-7 from
  exp's polynomial; 0 once ``exp(-a^2) < 2^-30``).
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
from sjax.primitives.exponential import exp_body
from sjax.shares import ArithShare

__all__ = ["sigmoid", "tanh", "silu", "erf", "gelu"]

_SCALE = 30  # fractional bits of exp(-a) (erf) and of sigmoid's result before its last rounding
_POLY_SCALE = 29
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


def _segment_fit(low: float, high: float) -> tuple[float, ...]:
    """The polynomial in ``v`` of ``sigmoid(centre + half v)`` on ``[-1, 1]``: the segment ``[low, high]``."""
    centre, half = (low + high) / 2, (high - low) / 2
    return fit(lambda v: 1.0 / (1.0 + np.exp(-(centre + half * v))), -1.0, 1.0, _SIGMOID_DEGREE)


# sigmoid(a) for a = |x|: a degree-7 polynomial in the segment's own variable on each of five segments
# (errors below 1.7e-7, at most 1.5e-7 beyond a = 2), and 1 from 32 on (1 - sigmoid(32) = 1.3e-14).
_SIGMOID_DEGREE = 7
_SEGMENTS = ((0, 2), (2, 4), (4, 8), (8, 16), (16, 32))
_SEGMENT_POLYNOMIALS = tuple(_segment_fit(*s) for s in _SEGMENTS) + ((1.0,) + (0.0,) * _SIGMOID_DEGREE,)
_HALF_WIDTH_BITS = tuple(int(math.log2((high - low) / 2)) for low, high in _SEGMENTS)  # 0 .. 3
_VARIABLE_BITS = 3  # v at scale f + 3: (a - centre) / half is then a left shift of a for every segment
_SUM_SCALE = 2 * _SCALE  # the polynomial's sum, not truncated


def _sigmoid_pieces(x: jax.Array, key: jax.Array, *, frac_bits: int):
    """``(s, p)``: the integer sign bit ``s = [x < 0]`` and ``p``, a ring value at 60 bits (not truncated)
    of ``sigmoid(|x|)``, so that ``sigmoid(x) = p + s (1 - 2 p)``. 19 rounds.

    The sign bit (7 rounds); one fused round converts it and forms ``a = |x|``; the bits ``[a < t]`` for
    the segments' ends ``t`` (7 rounds, one sign computation on all five differences); one fused round
    converts them and forms their products with ``a``, which give the segment's variable
    ``v = (a - centre) / half`` exactly (every ``1 / half`` is a power of two); then the segment's degree-7
    polynomial in ``v``, whose coefficients are linear in the segment bits (3 fused rounds, Estrin).
    """
    sign_key, magnitude_key, ends_key, segment_key, poly_key = randomness.split(key, 5)
    (negative,) = sign_word_body(x[None], sign_key)
    ops = [fixed.bit(negative), fixed.plain(x)]
    (s, _), (signed_x,), _ = fixed.fused_round(ops, [(0, 1)], magnitude_key)
    a = x - signed_x * np.uint64(2)
    ends = [high for _, high in _SEGMENTS]
    below = sign_word_body(jnp.stack([a - fixed.constant(t, frac_bits, x.shape) for t in ends]), ends_key)
    word = jnp.zeros(x.shape, jnp.uint64)
    for i, bit in enumerate(below):  # bit i: [a < ends[i]]
        word = word ^ ((bit & np.uint64(1)) << np.uint64(i))
    (flags, _), (flags_a,), _ = fixed.fused_round(
        [fixed.bits(word, range(len(ends))), fixed.plain(a[..., None])], [(0, 1)], segment_key
    )
    one = fixed.constant(1.0, 0, x.shape)
    # Segment i: [a < ends[i]] - [a < ends[i - 1]]; the last, a >= 32, is 1 - [a < 32].
    flags = [flags[..., i] for i in range(len(ends))]
    flags_a = [flags_a[..., i] for i in range(len(ends))]
    indicators = [flags[0]] + [flags[i] - flags[i - 1] for i in range(1, len(ends))] + [one - flags[-1]]
    times_a = [flags_a[0]] + [flags_a[i] - flags_a[i - 1] for i in range(1, len(ends))]
    # v = (a - centre) / half at scale f + 3 (0 on the last segment).
    v = jnp.zeros(x.shape, jnp.uint64)
    for (low, high), half_bits, indicator, product in zip(_SEGMENTS, _HALF_WIDTH_BITS, indicators, times_a):
        shift = _VARIABLE_BITS - half_bits
        centre = fixed.encode_scalar((low + high) / 2, frac_bits + shift)
        v = v + (product << np.uint64(shift)) - indicator * centre
    variable_scale = frac_bits + _VARIABLE_BITS
    if variable_scale <= _POLY_SCALE:
        u = fixed.plain(v << np.uint64(_POLY_SCALE - variable_scale))
    else:
        u = fixed.pending(v, variable_scale - _POLY_SCALE)
    cases = list(zip(indicators, _SEGMENT_POLYNOMIALS))
    return s, fixed.selected_polynomial(u, cases, poly_key, scale=_SUM_SCALE, u_scale=_POLY_SCALE)


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
    total = product + (xs << np.uint64(_SCALE))
    return fixed.rescale(total, out_key, from_scale=frac_bits + _SCALE, to_scale=frac_bits)


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

    Domain: every representable ``x`` (the target ``[-30, 30]`` included). From ``|x| = 32`` on it is 0 or
    1 (``1 - sigmoid(32) = 1.3e-14``).
    Error: absolute, below ``2^-f + 2e-7``: the final rounding, and the segments' polynomials (1.7e-7)
    with the rounding of their coefficients and powers; none from ``|x| = 32`` on.
    Cost: 20 rounds; each party sends ``356 * (n - 1)`` bytes per element; the dealer
    sends ``482`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("sigmoid", sigmoid_body, x, key)


def tanh(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise hyperbolic tangent.

    Domain: every representable ``x`` (the target ``[-10, 10]`` included). From ``|x| = 16`` on it is -1
    or 1 (``1 - tanh(16) = 2.5e-14``).
    Error: absolute, below ``2^-f + 4e-7``: the final rounding, and twice the polynomial errors of the
    sigmoid of ``2|x|`` (see :func:`sigmoid`).
    Cost: 20 rounds; each party sends ``356 * (n - 1)`` bytes per element; the dealer
    sends ``482`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
    """
    return run_unary("tanh", tanh_body, x, key)


def silu(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``x * sigmoid(x)`` (swish).

    Domain: ``|x| < 2^(32 - f)`` (65536 for 16 bits; the target is ``[-10, 10]``). Beyond it the product
    leaves the truncation's range and the result is wrong (finite, never NaN).
    Error: absolute, below ``2^-f + |x| 2^-30 + 3.2e-6``: the final rounding, and ``|x|`` times the
    sigmoid's errors at 30 bits (its rounding, and its polynomials, 2e-7 below ``|x| = 16`` and none from
    32 on: see :func:`sigmoid`). That is 1.6e-5 on the target and grows with ``|x|`` to 7.6e-5 at the end
    of the domain.
    Cost: 21 rounds; each party sends ``380 * (n - 1)`` bytes per element; the dealer
    sends ``506`` bytes per element (sizes a multiple of 64; see :mod:`sjax.bits`).
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
