"""Functions computed by normalising with the leading one bit: reciprocal, div, log, sqrt, rsqrt.

Range reduction: the leading one of ``|x|`` (found with an A2B, a prefix OR and a B2A of the one-hot
position ``j``) scales ``x`` exactly into a mantissa ``m`` in ``[1, 2]`` at 29 fractional bits, so that
``x = m * 2^(j - f)``. A polynomial in ``u = m - 1.5`` (degree 8, fitted near-minimax, relative error
below 2.2e-7) gives ``g(m)``, and a public table indexed by ``j`` gives the power of two that restores
the magnitude:

* ``1/x = (1/m) * 2^(f - j)``;
* ``log x = log m + (j - f) log 2``;
* ``sqrt x = sqrt(m') * 2^q`` and ``1/sqrt x = m'^(-1/2) * 2^(-q)`` with ``x = m' * 4^q``, ``m'`` in
  ``[1, 4)`` (the odd exponents use a second polynomial on the same powers).

The relative error is set by the 29-bit mantissa and the final rounding, independent of the magnitude of
``x``. Leakage: none.
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
from sjax.primitives.binary import ADDER_AND_WORDS, _a2b_with, and_many_body
from sjax.primitives.binary import _bit_to_arith_with
from sjax.shares import ArithShare

__all__ = ["reciprocal", "div", "log", "sqrt", "rsqrt", "normalize_body"]

_MANTISSA_SCALE = 29  # fractional bits of m in [1, 2]
_LOG_SCALE = 28  # fractional bits of u = m - 1.5 in log
_SHIFT = 32  # m = trunc(|x| * 2^(61 - j), 32): the product stays below 2^62
_POSITIONS = 62  # leading-one positions 0..61 (|x| < 2^62 in the ring)
_OR_SHIFTS = (1, 2, 4, 8, 16, 32)
_DEGREE = 8  # errors below 2.2e-7 (relative) on [1, 2]; 3 levels of powers


def _mantissa_fit(g):
    return fit(lambda u: g(u + 1.5), -0.5, 0.5, _DEGREE)


_RECIPROCAL = _mantissa_fit(lambda m: 1.0 / m)
_LOG = _mantissa_fit(np.log)
_RSQRT = (_mantissa_fit(lambda m: m**-0.5), _mantissa_fit(lambda m: (2 * m) ** -0.5))
_SQRT = (_mantissa_fit(np.sqrt), _mantissa_fit(lambda m: np.sqrt(2 * m)))


def normalize_body(x: jax.Array, key: jax.Array, *, signed: bool):
    """The leading one of ``|x|``: additive integer shares of its one-hot position and of the sign.

    For negative ``x`` the position is that of ``|x| - 1`` (the bits of ``~x``), so the mantissa of a
    power of two is 2 rather than 1. Returns ``(one_hot[..., 62], sign)`` (``sign`` is 0 when unsigned).

    Cost: 14 rounds (7 for the bits, 6 for the prefix OR, 1 for the B2A of 63 bits); one dealer message.
    The callers then form the mantissa in one fused round, evaluate the polynomial with one fused round
    per level of powers (:func:`sjax.primitives.fixed.fused_polynomials`), truncate it in the round of
    its product with the power-of-two table, and truncate that product.
    """
    size = int(np.prod(x.shape, dtype=np.int64))
    conversion_key, bits_key = randomness.split(key, 2)
    # The adder's and the prefix OR's AND triples in one correlation; the 63 B2A bits in another.
    material = randomness.conversion_material(
        conversion_key, x.shape, and_words=ADDER_AND_WORDS + len(_OR_SHIFTS), with_bit=False
    )
    bit_word, bit_value = randomness.random_bit(bits_key, x.shape + (_POSITIONS + 1,))
    bits = _a2b_with(x, material)
    a, b, c = material[2:5]
    first_or = ADDER_AND_WORDS * size
    sign_word = bits >> np.uint64(63)
    if signed:
        # Sign extension is linear over XOR: x for x >= 0, ~x = |x| - 1 for x < 0.
        bits = bits ^ (jnp.uint64(0) - sign_word)
    prefix = bits
    for level, shift in enumerate(_OR_SHIFTS):
        lo = first_or + level * size
        triple = tuple(t[lo : lo + size] for t in (a, b, c))
        shifted = prefix >> np.uint64(shift)
        (both,) = and_many_body([(prefix, shifted)], None, triple)
        prefix = prefix ^ shifted ^ both  # OR
    one_hot_word = prefix ^ (prefix >> np.uint64(1))
    picked = jnp.stack(
        [(one_hot_word >> np.uint64(p)) & np.uint64(1) for p in range(_POSITIONS)] + [sign_word], axis=-1
    )
    arithmetic = _bit_to_arith_with(picked, bit_word, bit_value)
    return arithmetic[..., :_POSITIONS], arithmetic[..., _POSITIONS]


def _table(values) -> np.ndarray:
    return np.array([int(v) % (1 << 64) for v in values], dtype=np.uint64)


def _sign_factor(sign: jax.Array) -> jax.Array:
    """``1 - 2 s`` as integer shares."""
    return fixed.constant(1.0, 0, sign.shape) - sign * np.uint64(2)


def _mantissa_offset(x: jax.Array, up: jax.Array, key: jax.Array, scale: int = _MANTISSA_SCALE) -> fixed.Operand:
    """``u = m - 1.5`` with ``m = x * up`` in ``[1, 2]``, as a pending operand that truncates to ``scale``
    bits: the product (one fused round) is exact at ``29 + 32`` bits, so ``|u| * 2^61 < 2^62``."""
    _, (m,), _ = fixed.fused_round([fixed.plain(x), fixed.plain(up)], [(0, 1)], key)
    return fixed.pending(m - fixed.constant(1.5, _MANTISSA_SCALE + _SHIFT, x.shape), _MANTISSA_SCALE + _SHIFT - scale)


def _times_table(pairs, key, *, from_scale: int, mid_scale: int) -> jax.Array:
    """``sum value * factor`` over ``(value, factor)`` pairs: each ``value`` a ring value at ``from_scale``,
    truncated to ``mid_scale`` in the fused round of the products; each ``factor`` an integer (a table
    entry that carries the result's scale); the sum truncated by ``mid_scale`` bits: 2 rounds."""
    product_key, out_key = randomness.split(key, 2)
    ops = []
    for value, factor in pairs:
        ops += [fixed.pending(value, from_scale - mid_scale), fixed.plain(factor)]
    _, products, _ = fixed.fused_round(ops, [(2 * i, 2 * i + 1) for i in range(len(pairs))], product_key)
    return fixed.rescale(sum(products), out_key, from_scale=mid_scale, to_scale=0)


def reciprocal_body(x: jax.Array, key: jax.Array, *, frac_bits: int, min_magnitude_bits: int = 0) -> jax.Array:
    """One party's share of ``1/x`` at scale ``frac_bits``. See :func:`reciprocal`.

    ``min_magnitude_bits``: a public lower bound ``|x| >= 2^(min_magnitude_bits - frac_bits)`` that lets
    the result carry more bits (softmax's sum, at least 1, has ``min_magnitude_bits = frac_bits``).
    """
    norm_key, sign_key, m_key, poly_key, out_key = randomness.split(key, 5)
    one_hot, sign = normalize_body(x, norm_key, signed=True)
    sign_factor = _sign_factor(sign)
    up = (one_hot * _table([2 ** (61 - j) for j in range(_POSITIONS)])).sum(-1)
    # 2^(2f - j) restores the magnitude; below 2^-f (j > 2f) the reciprocal rounds to 0.
    down = (
        one_hot
        * _table([2 ** (2 * frac_bits - j) if min_magnitude_bits <= j <= 2 * frac_bits else 0 for j in range(_POSITIONS)])
    ).sum(-1)
    # x = -2^-f has |x| - 1 = 0 and no leading one: its position is 0. With s(1 - 2s) = -s for a bit s, that
    # adds -none * s times position 0's entries, in the same round as the sign products.
    none = fixed.constant(1.0, 0, sign.shape) - one_hot.sum(-1)
    up_signed, down_signed, lone = fixed.mul_many(
        [(up, sign_factor), (down, sign_factor), (none, sign)], sign_key, shift=0
    )
    up_signed = up_signed - lone * np.uint64(2**61)
    down_signed = down_signed - lone * np.uint64(2 ** (2 * frac_bits))
    out_scale = min(_MANTISSA_SCALE, 61 - 2 * frac_bits + min_magnitude_bits)
    inverse = fixed.fused_polynomial(_mantissa_offset(x, up_signed, m_key), _RECIPROCAL, poly_key, scale=_MANTISSA_SCALE)
    return _times_table([(inverse, down_signed)], out_key, from_scale=2 * _MANTISSA_SCALE, mid_scale=out_scale)


def reciprocal(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/x`` for positive or negative ``x``.

    Domain: any nonzero representable ``x``; the target ranges ``[1e-2, 1e4]`` and ``[-1e4, -1e-2]`` are
    well inside. Where ``|1/x| < 2^-(f+1)`` the result is 0. ``reciprocal(0)`` is 0 (never NaN or inf).
    Error: ``|y - 1/x| <= |1/x| * 2^-21 + 2^-f`` (the degree-8 polynomial, then the final rounding).
    Cost: 22 rounds; each party sends ``968 * (n - 1)`` bytes per element; the dealer
    sends ``1048`` bytes per element.
    """
    return run_unary("reciprocal", reciprocal_body, x, key)


def div(x, y: ArithShare, key: jax.Array) -> ArithShare:
    """``x / y`` for a secret divisor: ``x * reciprocal(y)``; ``x`` may be public.

    Error: ``|x| * (|1/y| * 2^-21 + 2^-f) + 2^-f``: the reciprocal's absolute error scales with ``|x|``.
    Cost: that of :func:`reciprocal` and :func:`sjax.mul`, 24 rounds.
    """
    from sjax.primitives.arith import mul  # noqa: PLC0415  (sibling protocol module)

    if not isinstance(y, ArithShare):
        raise TypeError(f"div needs a secret divisor (an ArithShare), got {type(y).__name__}; for a public "
                        "divisor use sjax.mul(x, 1 / y, key)")
    reciprocal_key, product_key = randomness.split(randomness.check_key(key), 2)
    return mul(x, reciprocal(y, reciprocal_key), product_key)


def log_body(x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None) -> jax.Array:
    """One party's share of ``log(x)``: ``x`` at scale ``frac_bits``, the result at ``out_scale``
    (default ``frac_bits``). See :func:`log`."""
    norm_key, m_key, poly_key, out_key = randomness.split(key, 4)
    one_hot, _ = normalize_body(x, norm_key, signed=False)
    up = (one_hot * _table([2 ** (61 - j) for j in range(_POSITIONS)])).sum(-1)
    # At 28 bits, so that log m + (j - f) log 2 (below 45 in magnitude) stays below 2^62 at 56 bits.
    log_m = fixed.fused_polynomial(_mantissa_offset(x, up, m_key, _LOG_SCALE), _LOG, poly_key, scale=_LOG_SCALE)
    # (j - f) log 2 at 29 bits: exact integer weights times a public constant.
    exponent = (one_hot * _table([j - frac_bits for j in range(_POSITIONS)])).sum(-1)
    total = log_m + exponent * fixed.encode_scalar(math.log(2.0), 2 * _LOG_SCALE)
    out_scale = frac_bits if out_scale is None else out_scale
    return fixed.rescale(total, out_key, from_scale=2 * _LOG_SCALE, to_scale=out_scale)


def log(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise natural logarithm.

    Domain: ``x > 0`` (any positive representable value, covering the target ``[1e-3, 1e4]``). For
    ``x <= 0`` the result is finite but meaningless (never NaN).
    Error: below ``2^-f`` plus ``2^-24`` (absolute).
    Cost: 20 rounds; each party sends ``904 * (n - 1)`` bytes per element; the dealer
    sends ``992`` bytes per element.
    """
    return run_unary("log", log_body, x, key)


def _root_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, inverse: bool, out_scale: int | None = None
) -> jax.Array:
    norm_key, m_key, poly_key, out_key = randomness.split(key, 4)
    one_hot, _ = normalize_body(x, norm_key, signed=False)
    up = (one_hot * _table([2 ** (61 - j) for j in range(_POSITIONS)])).sum(-1)
    u = _mantissa_offset(x, up, m_key)
    even_coefficients, odd_coefficients = _RSQRT if inverse else _SQRT
    # x = m * 2^e with e = j - f = 2q + odd: sqrt x = sqrt(m * 2^odd) * 2^q.
    exponents = [j - frac_bits for j in range(_POSITIONS)]
    result_scale = frac_bits if out_scale is None else out_scale
    if inverse:
        factors = [2 ** (result_scale - e // 2) if result_scale - e // 2 >= 0 else 0 for e in exponents]
    else:
        factors = [2 ** (e // 2 + result_scale) if e // 2 + result_scale >= 0 else 0 for e in exponents]
    # The root (below 2) times the largest factor must stay below 2^62.
    root_scale = min(_MANTISSA_SCALE, 60 - max(max(factors).bit_length() - 1, 0))
    # Both polynomials share the powers of u. The odd flag and the magnitude are both functions of the
    # one-hot position, so the magnitude for odd and for even exponents are linear in the one-hot: the
    # selection costs nothing, and both roots meet their magnitude in one fused round.
    even, odd_value = fixed.fused_polynomials(
        u, [even_coefficients, odd_coefficients], poly_key, scale=_MANTISSA_SCALE
    )
    even_magnitude = (one_hot * _table([f if e % 2 == 0 else 0 for e, f in zip(exponents, factors)])).sum(-1)
    odd_magnitude = (one_hot * _table([f if e % 2 else 0 for e, f in zip(exponents, factors)])).sum(-1)
    return _times_table(
        [(even, even_magnitude), (odd_value, odd_magnitude)], out_key,
        from_scale=2 * _MANTISSA_SCALE, mid_scale=root_scale,
    )


def sqrt_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``sqrt(x)`` at scale ``frac_bits``. See :func:`sqrt`."""
    return _root_body(x, key, frac_bits=frac_bits, inverse=False)


def rsqrt_body(x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None) -> jax.Array:
    """One party's share of ``1/sqrt(x)``: ``x`` at scale ``frac_bits``, the result at ``out_scale``
    (default ``frac_bits``). See :func:`rsqrt`."""
    return _root_body(x, key, frac_bits=frac_bits, inverse=True, out_scale=out_scale)


def sqrt(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise square root.

    Domain: ``x >= 0`` (covering the target ``[0, 1e4]``); ``sqrt(0) = 0``. For ``x < 0`` the result is
    finite but meaningless (never NaN).
    Error: relative ``2^-21`` plus ``2^-f`` absolute.
    Cost: 21 rounds; each party sends ``944 * (n - 1)`` bytes per element; the dealer
    sends ``1096`` bytes per element.
    """
    return run_unary("sqrt", sqrt_body, x, key)


def rsqrt(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/sqrt(x)``.

    Domain: ``x > 0`` (covering the target ``[1e-2, 1e4]``); where the result is below ``2^-(f+1)`` it is
    0; ``rsqrt(0) = 0``. For ``x < 0`` the result is finite but meaningless (never NaN).
    Error: relative ``2^-23`` plus ``2^-f`` absolute.
    Cost: 21 rounds; each party sends ``944 * (n - 1)`` bytes per element; the dealer
    sends ``1096`` bytes per element.
    """
    return run_unary("rsqrt", rsqrt_body, x, key)
