"""Functions computed by normalising with the leading one: reciprocal, div, log, sqrt, rsqrt.

Range reduction: the leading one of ``|x|`` is at position ``j = 16 a + b`` (digits ``a`` in 0..3 and
``b`` in 0..15), and ``x`` is scaled into a mantissa ``m = |x| 2^-j`` in ``[1, 2]``. A degree-6 polynomial
in ``u = m - 1.5`` for each half, ``[1, 1.5]`` and ``[1.5, 2]`` (fitted near-minimax, relative error below
2.4e-7), gives ``g(m)``, and public factors per digit restore the magnitude:

* ``1/x = (1/m) * 2^(f - j)`` with the sign of ``x``;
* ``log x = log m + (j - f) log 2``;
* ``sqrt x = sqrt(m') * 2^q`` and ``1/sqrt x = m'^(-1/2) * 2^(-q)`` with ``x = m' * 4^q``, ``m'`` in
  ``[1, 4)`` (the odd exponents use other polynomials on the same powers).

Splitting the position into two digits is what keeps this cheap: every step that depends on the position
works on 16 + 4 one-hot entries instead of 62, and a factor ``2^(c - j)`` is the product of a factor of
``b`` and one of ``a``.

Rounds (15 for the reciprocal, sqrt and rsqrt, 14 for log):

1. The A2B opens ``x - r`` for the dealer's ``r``.
2. to 6. Bits, as AND monomials of XOR-shared words (:func:`sjax.primitives.fixed.and_round`): the
   A2B's Kogge–Stone adder (its first level is local: a polynomial in the bits of ``r``, whose products
   the dealer supplies), beside a leading-zero anticipator's indicator (local too), whose leading one
   is the true position or the one above it, and its prefix OR.
7. The last prefix-OR level; beside it, for a signed ``x``, the sign bit to arithmetic and ``|x|``.
8. The adder's bits correct the predicted position and give the bit below it. Folding the one-hot word
   (XOR of its 16-bit chunks; parity of each chunk) gives the one-hots of ``b`` and ``a``, locally.
9. Those one-hots and the flags to arithmetic (one opened word per element) and, in the same round,
   ``v = |x| 2^(29 - 16 a)``: products of the bits of ``a`` with ``|x|`` shifted left or truncated.
10. ``m = v 2^(15 - b)`` exactly, at 44 bits; beside it the output's low-digit factor takes the sign.
11. to 13. The polynomial, whose coefficients are linear in the case bits (half, parity of ``j``), by
    Estrin's scheme from ``u`` alone.
14. The factor of ``b`` (a product with the polynomial truncated by 15 bits); for log, the last
    truncation of ``log m + (j - f) log 2``, whose second term is linear in the digits.
15. The factor of ``a``: the value truncated by a public amount per digit, selected by its bits.

The relative error is set by the polynomials, the 29 or more significant bits of ``m`` and the rounding
of the coefficients (below ``2^-30``), independent of the magnitude of ``x``; the absolute error by the
final rounding, ``2^-f``. A result below one unit rounds to 0 or ``2^-f`` (stochastic rounding).
Leakage: none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, parallel, randomness
from sjax.primitives import fixed
from sjax.primitives._fit import fit
from sjax.primitives._unary import run_unary
from sjax.primitives.fixed import Factor
from sjax.shares import ArithShare

__all__ = ["reciprocal", "div", "log", "sqrt", "rsqrt", "normalize_body"]

_U_SCALE = 29  # fractional bits of u = m - 1.5 and of its powers
_DEGREE = 6  # per half of [1, 2]: relative errors below 2.4e-7; 3 rounds from u
_LOW = 16  # values of the low digit b; the high digit a has 64 / 16 = 4
_HIGH = 4
_WIDE_SCALE = _U_SCALE + _LOW - 1  # 44: m after the exact shift by 2^(15 - b)
_ALL_ONES = np.uint64(2**64 - 1)
_TOP = np.uint64(1 << 63)
_ONE = np.uint64(1)
_LOW_63 = np.uint64(2**63 - 1)
_ODD = np.uint64(0xAAAA_AAAA_AAAA_AAAA)

# Bits of the digit word (one XOR-shared word per element): b's one-hot, the flags, a's one-hot.
_HIGH_FLAG, _ODD_FLAG, _HIGH_ODD_FLAG = 16, 17, 18
_HIGH_DIGIT_AT = 20


def _halves(g):
    """Power-basis fits of ``g(m)`` in ``u = m - 1.5`` on ``[1, 1.5]`` and ``[1.5, 2]``."""
    return (
        fit(lambda u: g(u + 1.5), -0.5, 0.0, _DEGREE),
        fit(lambda u: g(u + 1.5), 0.0, 0.5, _DEGREE),
    )


_RECIPROCAL = _halves(lambda m: 1.0 / m)
_LOG = _halves(np.log)
# (even exponent, odd exponent): x = m 2^e with e odd is (2m) 2^(e - 1).
_RSQRT = (_halves(lambda m: m**-0.5), _halves(lambda m: (2 * m) ** -0.5))
_SQRT = (_halves(np.sqrt), _halves(lambda m: np.sqrt(2 * m)))


# -- the leading one ---------------------------------------------------------------------------------
#
# The bit circuit, as AND monomials (fixed.Factor: word, shift, public AND mask, public XOR mask).
#
# * The A2B adds the public c = x - r and the dealer's r with a Kogge–Stone adder: a level of span s
#   turns (generate G, propagate P) into (G ^ P & (G << s), P & (P << s)); G and P & (G << s) are
#   exclusive, so their OR is their XOR. Level 1 is a polynomial in r's bits with public coefficients:
#   local, from the dealer's product of r and r << 1.
# * A leading-zero anticipator (Schmookler and Nowka) predicts the leading one of |x| (of x for x >= 0,
#   of ~x for x < 0) from c and r alone, as the leading one of an indicator word that is also local (a
#   degree-3 polynomial in bits i - 1, i, i + 1 of r): the prediction is the true position or the one
#   above it. So the prefix OR of the indicator runs beside the adder's levels, and one more round
#   corrects the prediction with the adder's bits.
# * A prefix-OR level is the complement of the AND of two complemented words, one shifted.
#
# Two-factor levels cost one dealer word per level and element; wider ones (four factors, half the
# rounds) would cost eleven, and the dealer's words, not the rounds, set the run time.


def _local_monomials(c: jax.Array | None) -> list[list[Factor]]:
    """On the dealer's ``r`` (word 0) and the public ``c``: the adder's level 1 (generate ``g = r & c``
    and ``g ^ p & (g << 1)`` as two exclusive monomials, propagate ``p & (p << 1)`` with ``p = r ^ c``),
    then the anticipator's indicator (four exclusive monomials). ``c = None`` gives the structure, which
    is all the dealer needs."""

    def public(make):
        return None if c is None else make(c)

    def shifted(k):
        return public(lambda c: c << np.uint64(k))

    g0, g1 = Factor(0, 0, and_mask=shifted(0)), Factor(0, 1, and_mask=shifted(1))
    p0, p1 = Factor(0, 0, xor_mask=shifted(0)), Factor(0, 1, xor_mask=shifted(1))
    adder = [[g0], [p0, g1], [p0, p1]]
    # Bit i of the indicator: f = t+ (g ~z- | z ~g-) | ~t+ (z ~z- | g ~g-), with g = c & r, z = ~c & ~r
    # = (r & ~c) ^ ~c, t+ = t_{i+1} (t = c ^ r, t_64 = 0), ~z- = ~z_{i-1} (z_{-1} = 1), ~g- = ~g_{i-1}
    # (g_{-1} = 0). Bits of r enter shifted by -1, 0 and 1.
    g = Factor(0, 0, and_mask=public(lambda c: c))
    z = Factor(0, 0, and_mask=public(lambda c: ~c), xor_mask=public(lambda c: ~c))
    t_up = Factor(0, -1, xor_mask=public(lambda c: c >> np.uint64(1)))
    t_up_not = Factor(0, -1, xor_mask=public(lambda c: ~(c >> np.uint64(1))))
    z_down_not = Factor(
        0, 1, and_mask=public(lambda c: ~c << _ONE), xor_mask=public(lambda c: (~c << _ONE) ^ ~_ONE)
    )
    g_down_not = Factor(0, 1, and_mask=public(lambda c: c << _ONE), xor_mask=public(lambda c: _ALL_ONES))
    indicator = [
        [t_up, g, z_down_not], [t_up, z, g_down_not], [t_up_not, z, z_down_not], [t_up_not, g, g_down_not]
    ]
    return adder + indicator


def _none_above(shift: int) -> list[Factor]:
    """``~q & ~(q >> shift)`` for the prefix ``q`` (word 0): no one at either place."""
    return [Factor(0, 0, xor_mask=_ALL_ONES), Factor(0, -shift, xor_mask=_ALL_ONES)]


def _adder_level(span: int) -> list[list[Factor]]:
    """An adder level on generate (word 1) and propagate (word 2): ``P & (G << span)``, and but for the
    last level (span 32) ``P & (P << span)``."""
    generate = [Factor(2, 0), Factor(1, span)]
    return [generate] if span == 32 else [generate, [Factor(2, 0), Factor(2, span)]]


# The correction, on the predicted one-hot o (word 0) and X1, the bits shifted up by one (for signed, the
# sign in bit 0): X = X1 >> 1 (bits 62 and 63 of X are 0) and X2 = X1 << 1.
_O, _X, _X1, _X2 = Factor(0), Factor(1, -1), Factor(1, 0), Factor(1, 1)

# Rounds after the opening: (words opened, monomials). Rounds 2 to 6 carry a prefix-OR level (word 0)
# and an adder level (words 1 and 2); round 7 the last OR level; round 8 the correction.
_STAGES = tuple((3, [_none_above(s)] + _adder_level(2 * s)) for s in (1, 2, 4, 8, 16)) + (
    (1, [_none_above(32)]),
    (2, [[_O, _X], [_O, _X, _X1], [_O, _X2], [_O, _X, _X2]]),
)
_LOCAL_PRODUCTS = fixed.monomial_products(_local_monomials(None))
_STAGE_PRODUCTS = tuple(fixed.monomial_products(monomials) for _, monomials in _STAGES)


class _BitMaterial(NamedTuple):
    r_bits: jax.Array
    r_value: jax.Array
    local_products: dict
    masks: tuple[list[jax.Array], ...]
    products: tuple[dict, ...]


def _bit_material(key: jax.Array, shape) -> _BitMaterial:
    """Everything the bit circuit needs, in one correlation: the A2B's random word ``r`` (XOR and additive
    shares), the products of its shifted copies (the local level), and for every later round a uniform
    mask per opened word and the products of their shifted copies."""
    size = int(np.prod(shape, dtype=np.int64))
    n_masks = sum(words for words, _ in _STAGES)
    n_products = len(_LOCAL_PRODUCTS) + sum(len(p) for p in _STAGE_PRODUCTS)

    def derive(r, *masks):
        out = [r] + fixed.mask_products([r], _LOCAL_PRODUCTS)
        start = 0
        for (words, _), products in zip(_STAGES, _STAGE_PRODUCTS):
            out += fixed.mask_products(masks[start : start + words], products)
            start += words
        return tuple(out)

    n_free = 1 + n_masks
    xor = tuple(range(n_free)) + tuple(range(n_free + 1, n_free + 1 + n_products))
    parts = randomness.correlation(
        key, [shape] * n_free, [shape] * (1 + n_products), derive,
        name="dual_random", count=size, xor=xor, also=(("and_product", 64 * n_products * size),),
    )
    r_bits, masks = parts[0], list(parts[1:n_free])
    r_value, products = parts[n_free], list(parts[n_free + 1 :])
    local = dict(zip(_LOCAL_PRODUCTS, products[: len(_LOCAL_PRODUCTS)]))
    products = products[len(_LOCAL_PRODUCTS) :]
    stage_masks, stage_products = [], []
    for (words, _), keys in zip(_STAGES, _STAGE_PRODUCTS):
        stage_masks.append(masks[:words])
        stage_products.append(dict(zip(keys, products[: len(keys)])))
        masks, products = masks[words:], products[len(keys) :]
    return _BitMaterial(r_bits, r_value, local, tuple(stage_masks), tuple(stage_products))


def _parity(word: jax.Array) -> jax.Array:
    """Bit 0: the XOR of all 64 bits (linear, so it applies to XOR shares)."""
    for shift in (32, 16, 8, 4, 2, 1):
        word = word ^ (word >> np.uint64(shift))
    return word & _ONE


def _digit_word(one_hot: jax.Array, high: jax.Array) -> jax.Array:
    """The digits of the leading one's position ``j = 16 a + b`` and the flags, as bits of one word.

    ``one_hot`` has bit ``j`` set, ``high`` bit ``j`` where the bit below the leading one is set (both
    XOR-shared, at most one bit set). Bits 0 to 15: the one-hot of ``b`` (the XOR of the four 16-bit
    chunks); 16: the flag; 17: ``j`` odd; 18: both; 20 to 23: the one-hot of ``a`` (each chunk's parity).
    Every step is a shift, a public mask or an XOR: local on XOR shares.
    """
    low = (one_hot ^ (one_hot >> np.uint64(16)) ^ (one_hot >> np.uint64(32)) ^ (one_hot >> np.uint64(48)))
    chunks = one_hot
    for shift in (8, 4, 2, 1):
        chunks = chunks ^ (chunks >> np.uint64(shift))  # bit 16 a: the parity of chunk a
    word = (low & np.uint64(0xFFFF)) ^ (_parity(high) << np.uint64(_HIGH_FLAG))
    word = word ^ (_parity(one_hot & _ODD) << np.uint64(_ODD_FLAG))
    word = word ^ (_parity(high & _ODD) << np.uint64(_HIGH_ODD_FLAG))
    for a in range(_HIGH):
        word = word ^ (((chunks >> np.uint64(16 * a)) & _ONE) << np.uint64(_HIGH_DIGIT_AT + a))
    return word


def _table(values) -> np.ndarray:
    return np.array([int(v) % (1 << 64) for v in values], dtype=np.uint64)


def _weighted(bits: jax.Array, values) -> jax.Array:
    """``sum_i bits[..., i] * values[i]`` for a public table."""
    return (bits * _table(values)).sum(-1)


def _selection(word: jax.Array, value: jax.Array, shifts: Sequence[int], first: int):
    """Operands and products of one fused round for ``sum_a [a] * value * 2^shifts[a]``, where ``[a]`` is
    bit ``20 + a`` of the XOR-shared digit ``word``: a left shift is exact (a product with ``value``
    then a local shift), a right shift by 1 to 61 bits is a truncation of ``value`` opened in the same
    round (``|value| < 2^62``), and a larger one gives 0. ``first``: the index of the first operand.

    Returns ``(operands, products, finish)``; ``finish(values, out)`` gives the sum and the integer
    bits of ``a`` (0 where dropped) from the round's values and its products (these first).
    """
    left = [(a, s) for a, s in enumerate(shifts) if s >= 0]
    right = [(a, -s) for a, s in enumerate(shifts) if -62 < s < 0]
    operands, products, parts = [], [], []
    for group, operand in ((left, fixed.plain(value[..., None])), (right, None)):
        if not group:
            continue
        digits = [a for a, _ in group]
        if operand is None:
            operand = fixed.pending(value, tuple(amount for _, amount in group))
        index = first + len(operands)
        operands += [fixed.bits(word, [_HIGH_DIGIT_AT + a for a in digits]), operand]
        products.append((index, index + 1))
        parts.append((index, digits, [2**s for _, s in group] if operand.kind == "plain" else None))

    def finish(values, out):
        total = jnp.zeros(value.shape, jnp.uint64)
        digit_bits = [jnp.zeros(value.shape, jnp.uint64)] * _HIGH
        for product, (index, digits, weights) in zip(out, parts):
            total = total + (product.sum(-1) if weights is None else _weighted(product, weights))
            for i, a in enumerate(digits):
                digit_bits[a] = values[index][..., i]
        return total, jnp.stack(digit_bits, axis=-1)

    return operands, products, finish


class Normalized(NamedTuple):
    """What :func:`normalize_body` returns (this party's shares).

    ``u``: ``m - 1.5`` at 44 bits; ``word``: the XOR-shared digit word (see :func:`_digit_word`);
    ``low``: the one-hot of ``b`` (16 entries), ``high``: that of ``a`` (4), ``flags``: the flag of the
    bit below the leading one (``m > 1.5``), then with ``parity`` ``j`` odd and both; ``factor``: the
    output's low-digit factor ``sum_b [b] 2^(e_b - min e)`` for the caller's ``exponents`` (negated for
    ``x < 0``); ``lone``: 1 where ``x = -2^-f`` (signed; ``|x| - 1`` has no leading one, ``m = 1`` at
    position 0, and everything else is 0). All integers (scale 0) but ``u``.
    """

    u: jax.Array
    word: jax.Array
    low: jax.Array
    high: jax.Array
    flags: jax.Array
    factor: jax.Array | None = None
    lone: jax.Array | None = None


def normalize_body(
    x: jax.Array,
    key: jax.Array,
    *,
    signed: bool,
    parity: bool = False,
    exponents: Sequence[int] | None = None,
) -> Normalized:
    """The leading one of ``|x|``, its digits and the mantissa ``m = |x| 2^-j`` (see :class:`Normalized`).

    For negative ``x`` the position is that of ``|x| - 1`` (the bits of ``~x``), so the mantissa of a
    power of two is 2 rather than 1, and ``m`` lies in ``(1, 2]``. ``|x| < 2^62`` in the ring.
    ``exponents``: the caller's low-digit exponents ``e_b`` (spread by at most 15), whose factor
    :func:`_magnitude` applies.

    Cost: 10 rounds (see the module docstring, rounds 1 to 10).
    """
    bits_key, sign_key, digits_key, mantissa_key = randomness.split(key, 4)
    material = _bit_material(bits_key, x.shape)
    first = comm.is_first_party()
    ones = jnp.where(first, _ALL_ONES, jnp.uint64(0))
    # Round 1: the A2B opens x - r. Locally: the adder's level 1 and the indicator (bit 63 cleared:
    # |x| < 2^62).
    (c,) = comm.open_shares(x - material.r_value)
    local = fixed.and_monomials([None], [material.r_bits], material.local_products, _local_monomials(c))
    generate, propagate = local[0] ^ local[1], local[2]
    prefix = (local[3] ^ local[4] ^ local[5] ^ local[6]) & _LOW_63
    # Rounds 2 to 6: a prefix-OR level of the indicator beside an adder level, in one opening each.
    for stage in range(5):
        words, monomials = [prefix, generate, propagate], _STAGES[stage][1]
        none, *terms = fixed.and_round(words, material.masks[stage], material.products[stage], monomials)
        prefix = none ^ ones
        generate = generate ^ terms[0]
        propagate = terms[1] if len(terms) > 1 else None
    bits = jnp.where(first, c, jnp.uint64(0)) ^ material.r_bits ^ (generate << _ONE)
    sign_word = bits >> np.uint64(63)
    # Round 7: the last prefix-OR level; beside it, for signed, the sign to arithmetic and |x|.
    (none,) = fixed.and_round([prefix], material.masks[5], material.products[5], _STAGES[5][1])
    magnitude, sign = x, None
    if signed:
        # Sign extension is linear over XOR: x for x >= 0, ~x = |x| - 1 for x < 0.
        bits = bits ^ (jnp.uint64(0) - sign_word)
        (sign, _), (signed_x,), _ = fixed.fused_round(
            [fixed.bit(sign_word), fixed.plain(x)], [(0, 1)], sign_key
        )
        magnitude = x - np.uint64(2) * signed_x
    # Round 8: the prediction p (none's lowest zero) and its correction: where bit p of the bits is set,
    # the leading one is at p, else at p - 1; the flag is the bit below it (for signed, bit 0 of X1 is
    # the sign: x = -2 has |x| - 1 = 1 and m = 2).
    predicted = none ^ ((none >> _ONE) ^ jnp.where(first, _TOP, jnp.uint64(0)))
    shifted_bits = bits << _ONE
    if signed:
        shifted_bits = shifted_bits ^ sign_word
    kept, kept_x1, at_x2, kept_x2 = fixed.and_round(
        [predicted, shifted_bits], material.masks[6], material.products[6], _STAGES[6][1]
    )
    one_hot = kept ^ ((predicted ^ kept) >> _ONE)
    word = _digit_word(one_hot, kept_x1 ^ ((at_x2 ^ kept_x2) >> _ONE))

    # Round 9: the digits and flags to arithmetic (one opened word), and v = |x| 2^(29 - 16 a), whose
    # leading one is at 29 + b.
    flag_positions = [_HIGH_FLAG] + ([_ODD_FLAG, _HIGH_ODD_FLAG] if parity else [])
    low_op = fixed.bits(word, list(range(_LOW)) + flag_positions)
    ops, products, finish = _selection(word, magnitude, [_U_SCALE - 16 * a for a in range(_HIGH)], first=1)
    values, out, _ = fixed.fused_round([low_op] + ops, products, digits_key)
    v, high = finish(values, out)
    low, flags = values[0][..., :_LOW], values[0][..., _LOW:]

    # Round 10: m = v 2^(15 - b) at 44 bits, exact (below 2^45); beside it, the output factor's sign.
    ops = [fixed.plain(v), fixed.plain(_weighted(low, [2 ** (_LOW - 1 - b) for b in range(_LOW)]))]
    products = [(0, 1)]
    factor = lone = None
    if exponents is not None:
        base = min(exponents)
        if max(exponents) - base > _LOW - 1:
            raise ValueError(f"low-digit exponents must lie within 15 of each other, got {exponents}")
        factor = _weighted(low, [2 ** (e - base) for e in exponents])
        if signed:
            has_one = low.sum(-1)
            ops += [fixed.plain(sign), fixed.plain(factor), fixed.plain(has_one)]
            products += [(2, 3), (2, 4)]
    _, out, _ = fixed.fused_round(ops, products, mantissa_key)
    if exponents is not None and signed:
        factor = factor - np.uint64(2) * out[1]
        lone = sign - out[2]
    u = out[0] - fixed.constant(1.5, _WIDE_SCALE, x.shape)
    return Normalized(u, word, low, high, flags, factor, lone)


# -- the polynomial and the magnitude --------------------------------------------------------------------


def _fold(n: Normalized, cases, key: jax.Array, *, scale: int) -> jax.Array:
    """``sum over cases of indicator * p_case(u)`` at ``scale`` bits (not truncated), with ``u = m - 1.5``
    truncated from 44 to 29 bits in the first of the 3 fused rounds (see
    :func:`sjax.primitives.fixed.selected_polynomial`)."""
    u = fixed.pending(n.u, _WIDE_SCALE - _U_SCALE)
    return fixed.selected_polynomial(u, cases, key, scale=scale, u_scale=_U_SCALE)


def _halves_cases(n: Normalized, halves) -> list[tuple[jax.Array, Sequence[float]]]:
    """The cases of the two halves of ``[1, 2]``: ``m <= 1.5`` (a leading one without the flag) and
    ``m > 1.5``."""
    high = n.flags[..., 0]
    return [(n.low.sum(-1) - high, halves[0]), (high, halves[1])]


def _magnitude(
    total: jax.Array,
    n: Normalized,
    key: jax.Array,
    *,
    exponents: Sequence[int],
    high_exponents: Sequence[int],
    scale: int,
) -> jax.Array:
    """``g 2^(e_b + h_a)`` rounded to an integer, for ``total = g 2^scale`` (``|total| < 2^61``), the
    low-digit exponents ``e_b`` (whose factor, with the sign, :func:`normalize_body` made) and the high
    ones ``h_a``. 2 rounds: ``total`` truncated by 15 bits times ``2^(e_b - min e)``, exact; then that
    shifted by ``h_a + min e - (scale - 15)``, left (exact) or right (a truncation; below 2^-61, 0).
    """
    low_key, high_key = randomness.split(key, 2)
    ops = [fixed.pending(total, _LOW - 1), fixed.plain(n.factor)]
    _, (scaled,), _ = fixed.fused_round(ops, [(0, 1)], low_key)
    shifts = [h + min(exponents) - (scale - _LOW + 1) for h in high_exponents]
    ops, products, finish = _selection(n.word, scaled, shifts, first=0)
    values, out, _ = fixed.fused_round(ops, products, high_key)
    return finish(values, out)[0]


# -- the functions -----------------------------------------------------------------------------------------


def reciprocal_body(x: jax.Array, key: jax.Array, *, frac_bits: int, signed: bool = True) -> jax.Array:
    """One party's share of ``1/x`` at scale ``frac_bits``. See :func:`reciprocal`.

    ``signed=False`` (for an ``x`` known to be positive, as softmax's sum) saves the sign's product.
    """
    norm_key, fold_key, magnitude_key = randomness.split(key, 3)
    # 1/x = (1/m) 2^(2f - j) at scale f, with j = 16 a + b: e_b = -b, h_a = 2f - 16 a.
    exponents = [-b for b in range(_LOW)]
    n = normalize_body(x, norm_key, signed=signed, exponents=exponents)
    total = _fold(n, _halves_cases(n, _RECIPROCAL), fold_key, scale=61)
    high_exponents = [2 * frac_bits - 16 * a for a in range(_HIGH)]
    result = _magnitude(total, n, magnitude_key, exponents=exponents, high_exponents=high_exponents, scale=61)
    if n.lone is not None:  # x = -2^-f: 1/x = -2^f
        result = result - (n.lone << np.uint64(2 * frac_bits))
    return result


def reciprocal(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/x`` for positive or negative ``x``.

    Domain: any nonzero representable ``x``; the target ranges ``[1e-2, 1e4]`` and ``[-1e4, -1e-2]`` are
    well inside. Where ``|1/x| < 2^-f`` the result is 0 or ``±2^-f``. ``reciprocal(0)`` is 0 (never NaN
    or inf).
    Error: ``|y - 1/x| <= |1/x| * 2^-21 + 2^-f``: the degree-6 polynomials (2.4e-7), the mantissa's 29
    bits and the coefficients' rounding, relative; the final rounding, absolute.
    Cost: 15 rounds; each party sends ``352 * (n - 1)`` bytes per element; the dealer sends ``896`` bytes
    per element.
    """
    return run_unary("reciprocal", reciprocal_body, x, key)


def div(x, y: ArithShare, key: jax.Array) -> ArithShare:
    """``x / y`` for a secret divisor: ``x * reciprocal(y)``; ``x`` may be public.

    Error: ``|x| * (|1/y| * 2^-21 + 2^-f) + 2^-f``: the reciprocal's absolute error scales with ``|x|``.
    Cost: 17 rounds; each party sends ``376 * (n - 1)`` bytes per element (16 rounds and ``360 * (n - 1)``
    for a public ``x``); the dealer sends ``920`` bytes per element (``912``).
    """
    from sjax.primitives.arith import mul  # noqa: PLC0415  (sibling protocol module)

    if not isinstance(y, ArithShare):
        raise TypeError(f"div needs a secret divisor (an ArithShare), got {type(y).__name__}; for a public "
                        "divisor use sjax.mul(x, 1 / y, key)")
    reciprocal_key, product_key = randomness.split(randomness.check_key(key), 2)
    if not isinstance(x, ArithShare):
        return mul(x, reciprocal(y, reciprocal_key), product_key)
    x._check_compatible(y, "div")
    if x.frac_bits != y.frac_bits:
        raise ValueError(f"div needs shares of one frac_bits, got {x.frac_bits} and {y.frac_bits}")
    return mul(x, reciprocal(y, reciprocal_key), product_key)


def log_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None, factor: float = 1.0
) -> jax.Array:
    """One party's share of ``factor * log(x)`` for a public real ``factor``: ``x`` at scale ``frac_bits``,
    the result at ``out_scale`` (default ``frac_bits``). See :func:`log`."""
    norm_key, fold_key, out_key = randomness.split(key, 3)
    out_scale = frac_bits if out_scale is None else out_scale
    # |factor log x| < |factor| (|j - f| + 1) log 2 for positions j in 0..62: the sum's scale keeps it
    # below 2^61.
    bound = abs(factor) * (max(frac_bits, 62 - frac_bits) + 1) * math.log(2.0)
    scale = 61 - max(math.ceil(math.log2(bound)), 0)
    if scale < _U_SCALE + 1:
        raise ValueError(f"log's factor {factor} is too large for the ring")
    n = normalize_body(x, norm_key, signed=False)
    halves = [[factor * c for c in half] for half in _LOG]
    total = _fold(n, _halves_cases(n, halves), fold_key, scale=scale)
    # (j - f) log 2 = (16 a + b - f) log 2: linear in the digits' one-hots.
    exponent = (
        _weighted(n.high, [16 * a for a in range(_HIGH)])
        + _weighted(n.low, [b - frac_bits for b in range(_LOW)])
    )
    total = total + exponent * fixed.encode_scalar(factor * math.log(2.0), scale)
    return fixed.rescale(total, out_key, from_scale=scale, to_scale=out_scale)


def log(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise natural logarithm.

    Domain: ``x > 0`` (any positive representable value, covering the target ``[1e-3, 1e4]``). For
    ``x <= 0`` the result is finite but meaningless (never NaN).
    Error: below ``2^-f`` plus ``2^-24`` (absolute): the final rounding; the polynomials (3.4e-8), the
    mantissa and the coefficients' rounding.
    Cost: 14 rounds; each party sends ``288 * (n - 1)`` bytes per element; the dealer sends ``728`` bytes
    per element.
    """
    return run_unary("log", log_body, x, key)


def _root_body(x: jax.Array, key: jax.Array, *, frac_bits: int, inverse: bool, out_scale: int | None = None):
    norm_key, fold_key, magnitude_key = randomness.split(key, 3)
    out_scale = frac_bits if out_scale is None else out_scale
    # x = m 2^e with e = j - f = 16 a + b - f = 2 q + odd: sqrt x = sqrt(m 2^odd) 2^q with
    # q = 8 a + (b - f - odd) / 2; the parity of e is that of b - f.
    odd = [(b - frac_bits) % 2 for b in range(_LOW)]
    half_exponents = [(b - frac_bits - o) // 2 for b, o in zip(range(_LOW), odd)]
    sign = -1 if inverse else 1
    exponents = [sign * e for e in half_exponents]
    high_exponents = [sign * 8 * a + out_scale for a in range(_HIGH)]
    n = normalize_body(x, norm_key, signed=False, parity=True, exponents=exponents)
    # Four cases: the parity of e (that of j, flipped for an odd f) and the half of m.
    has_one, high, j_odd, high_odd = n.low.sum(-1), n.flags[..., 0], n.flags[..., 1], n.flags[..., 2]
    by_parity_of_j = {
        1: (j_odd - high_odd, high_odd),
        0: (has_one - j_odd - high + high_odd, high - high_odd),
    }
    cases = []
    for parity_of_j, (low_half, high_half) in by_parity_of_j.items():
        polynomials = (_RSQRT if inverse else _SQRT)[(parity_of_j + frac_bits) % 2]
        cases += [(low_half, polynomials[0]), (high_half, polynomials[1])]
    # The root is below 2 (at most 1 for 1/sqrt).
    scale = 61 if inverse else 60
    total = _fold(n, cases, fold_key, scale=scale)
    return _magnitude(
        total, n, magnitude_key, exponents=exponents, high_exponents=high_exponents, scale=scale
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
    Error: relative ``2^-23`` plus ``2^-f`` absolute (the polynomials' share is 4.2e-9).
    Cost: 15 rounds; each party sends ``312 * (n - 1)`` bytes per element; the dealer sends ``920`` bytes
    per element.
    """
    return run_unary("sqrt", sqrt_body, x, key)


def rsqrt(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/sqrt(x)``.

    Domain: ``x > 0`` (covering the target ``[1e-2, 1e4]``); where the result is below ``2^-f`` it is 0
    or ``2^-f``; ``rsqrt(0) = 0``. For ``x < 0`` the result is finite but meaningless (never NaN).
    Error: relative ``2^-23`` plus ``2^-f`` absolute (the polynomials' share is 4.6e-8).
    Cost: 15 rounds; each party sends ``312 * (n - 1)`` bytes per element; the dealer sends ``920`` bytes
    per element.
    """
    return run_unary("rsqrt", rsqrt_body, x, key)
