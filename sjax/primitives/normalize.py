"""Functions computed by normalising with the leading one: reciprocal, div, log, sqrt, rsqrt.

Range reduction: the leading one of ``|x|`` (position ``j``) and the bit below it select a case, and ``x``
is scaled into a mantissa ``m = |x| 2^-j`` in ``[1, 2]`` at 29 fractional bits. A degree-6 polynomial in
``u = m - 1.5`` for each half, ``[1, 1.5]`` and ``[1.5, 2]`` (fitted near-minimax, relative error below
2.4e-7), gives ``g(m)``, and public tables indexed by the case restore the magnitude:

* ``1/x = (1/m) * 2^(f - j)`` with the sign of ``x``;
* ``log x = log m + (j - f) log 2``;
* ``sqrt x = sqrt(m') * 2^q`` and ``1/sqrt x = m'^(-1/2) * 2^(-q)`` with ``x = m' * 4^q``, ``m'`` in
  ``[1, 4)`` (the odd exponents use other polynomials on the same powers).

Rounds (8 for each function):

1. The A2B opens ``x - r`` for the dealer's ``r``; beside it, ``x`` truncated by 4, 8, ..., 32 bits and
   the squares of ``x`` and of those copies.
2. to 4. Bits, as AND monomials of XOR-shared words, each level one round for any number of factors
   (:func:`sjax.primitives.fixed.and_round`): the A2B's radix-4 Kogge–Stone adder, whose first level is
   local (a polynomial in the bits of the dealer's ``r``, whose products the dealer supplies) and whose
   two others take rounds 2 and 3; beside it, a leading-zero anticipator's indicator (local too), whose
   leading one is the true position or the one above it, and its radix-4 prefix OR (rounds 2 to 4); in
   round 4 the adder's bits correct the position and give the bit below it.
5. The one-hot position and the flags are converted to arithmetic shares (the word opened once), and in
   the same round multiplied by the copies of ``x`` and their squares: ``m`` and ``m^2``, exact.
6. to 8. Every case selection and the magnitude go into the polynomial's coefficients, which are linear
   in the converted bits: two rounds evaluate ``sum_j C_j u^j`` from ``u`` and ``u^2`` (Estrin), and one
   truncates it (or the caller truncates it in the round of its next product: div, softmax,
   layer_norm).

The relative error is set by the polynomials, the 26 or more significant bits of ``m`` and the rounding
of the coefficients (below ``2^-24``), independent of the magnitude of ``x``; the absolute error by the
final rounding, ``2^-f``, and the coefficients' rounding where the result is small, ``2^-(f+8)``.
Leakage: none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, parallel, randomness, ring
from sjax.primitives import fixed
from sjax.primitives._fit import fit
from sjax.primitives._unary import run_unary
from sjax.primitives.fixed import Factor
from sjax.shares import ArithShare

__all__ = ["reciprocal", "div", "log", "sqrt", "rsqrt", "normalize_body"]

_MANTISSA_SCALE = 29  # fractional bits of m in [1, 2], of u = m - 1.5 and of its powers
_POSITIONS = 62  # leading-one positions 0..61 (|x| < 2^62 in the ring)
_DIRECT = 29  # positions up to 29 scale x itself; above, x truncated by a multiple of _STEP bits
_STEP = 4
_TRUNCATIONS = tuple(range(_STEP, _POSITIONS - 1 - _DIRECT + _STEP, _STEP))  # 4, 8, ..., 32
_DEGREE = 6  # per half of [1, 2]: relative errors below 2.4e-7; 2 rounds from u and u^2
_ALL_ONES = np.uint64(2**64 - 1)


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
# * The A2B adds the public c = x - r and the dealer's r with a radix-4 Kogge–Stone adder: a level
#   combines the (generate, propagate) pairs of four groups spaced `span` apart, and its generate terms
#   are mutually exclusive, so their OR is their XOR. Level 1 is a polynomial in r's bits with public
#   coefficients: local, from the dealer's products of r's shifted copies.
# * A leading-zero anticipator (Schmookler and Nowka) predicts the leading one of |x| (of x for x >= 0,
#   of ~x for x < 0) from c and r alone, as the leading one of an indicator word that is also local (a
#   degree-3 polynomial in bits i - 1, i, i + 1 of r): the prediction is the true position or the one
#   above it. So the prefix OR of the indicator runs beside the adder's levels, and its last round
#   corrects the prediction with the adder's bits.
# * A radix-4 prefix-OR level is the complement of the AND of four complemented, shifted words.

_TOP = np.uint64(1 << 63)
_ONE = np.uint64(1)
_LOW_63 = np.uint64(2**63 - 1)


def _kogge_stone(g, p, last: bool) -> list[list[Factor]]:
    generate = [[g(0)], [p(0), g(1)], [p(0), p(1), g(2)], [p(0), p(1), p(2), g(3)]]
    return generate if last else generate + [[p(0), p(1), p(2), p(3)]]


def _local_monomials(c: jax.Array | None) -> list[list[Factor]]:
    """On the dealer's ``r`` (word 0) and the public ``c``: the adder's level 1 (generate ``r & c``,
    propagate ``r ^ c``, shifted by 0 to 3; five monomials), then the anticipator's indicator (four
    exclusive monomials). ``c = None`` gives the structure, which is all the dealer needs."""

    def public(make):
        return None if c is None else make(c)

    def shifted(k):
        return public(lambda c: c << np.uint64(k))

    adder = _kogge_stone(
        lambda k: Factor(0, k, and_mask=shifted(k)), lambda k: Factor(0, k, xor_mask=shifted(k)), False
    )
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


def _adder_level(span: int, last: bool) -> list[list[Factor]]:
    """A later adder level: generate (word 1) and propagate (word 2) of the groups ``0, span, 2 span,
    3 span`` below."""
    return _kogge_stone(lambda k: Factor(1, k * span), lambda k: Factor(2, k * span), last)


def _none_above(span: int, offset: int = 0) -> list[Factor]:
    """``prod_k ~(q >> (k span + offset))`` for the prefix ``q`` (word 0): no one in its four groups."""
    return [Factor(0, -(k * span + offset), xor_mask=_ALL_ONES) for k in range(4)]


def _last_level(span: int) -> list[list[Factor]]:
    """The last prefix-OR level, ``p = ~P0``, whose one-hot ``p ^ (p >> 1) = P0 ^ P1`` (``P1 = prod_k
    ~(q >> (k span + 1))``) is the predicted position; and the products of ``P0`` and ``P1`` with the
    adder's bits that correct it. Word 1 is ``X1``, the bits shifted up by one (for signed, the sign in
    bit 0): ``X = X1 >> 1`` (bit 62 and 63 of ``X`` are 0), ``X2 = X1 << 1``."""
    x, x1, x2 = Factor(1, -1), Factor(1, 0), Factor(1, 1)
    out = [_none_above(span)]
    for p in (_none_above(span), _none_above(span, 1)):
        out += [p + [x], p + [x, x1], p + [x2], p + [x, x2]]
    return out


# Rounds after the opening: (words opened, monomials). Rounds 2 and 3 carry an OR level (word 0) and an
# adder level (words 1 and 2); round 4 the last OR level and the correction.
_STAGES = (
    (3, [_none_above(1)] + _adder_level(4, False)),
    (3, [_none_above(4)] + _adder_level(16, True)),
    (2, _last_level(16)),
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


def _group(j: int) -> int:
    """Which copy of ``x`` scales position ``j``: 0 is ``x``, ``g > 0`` is ``x`` truncated by ``4 g`` bits."""
    return 0 if j <= _DIRECT else -(-(j - _DIRECT) // _STEP)


def _up(j: int) -> int:
    """The shift ``d`` with ``m = copy * 2^d`` at 29 bits: ``29 - j`` plus the bits truncated away."""
    return _MANTISSA_SCALE - j + _STEP * _group(j)


_GROUPS = tuple(_group(j) for j in range(_POSITIONS))


class Normalized(NamedTuple):
    """What :func:`normalize_body` returns (this party's shares).

    ``u``: ``m - 1.5`` at 29 bits; ``square``: ``u^2``, a :func:`sjax.primitives.fixed.pending` operand
    (58 bits, truncating to 29); ``one_hot[..., j]``: 1 where the leading one is at ``j``; ``high``: the
    same where moreover ``m > 1.5`` (the bit below the leading one is set); for ``signed``, ``negative``
    and ``negative_high``: ``one_hot`` and ``high`` where ``x < 0``, and ``lone``: 1 where ``x = -2^-f``
    (no leading one in ``|x| - 1``; ``m = 1`` at position 0). All integers (scale 0) but ``u``.
    """

    u: jax.Array
    square: fixed.Operand
    one_hot: jax.Array
    high: jax.Array
    negative: jax.Array | None = None
    negative_high: jax.Array | None = None
    lone: jax.Array | None = None


def normalize_body(x: jax.Array, key: jax.Array, *, signed: bool) -> Normalized:
    """The leading one of ``|x|`` and the mantissa ``m = |x| 2^-j`` (see :class:`Normalized`).

    For negative ``x`` the position is that of ``|x| - 1`` (the bits of ``~x``), so the mantissa of a
    power of two is 2 rather than 1, and ``m`` lies in ``(1, 2]``. ``|x| < 2^62`` in the ring.

    Cost: 5 rounds (see the module docstring): the A2B's opening beside the copies of ``x``; two rounds
    of the adder beside the prefix OR of the anticipator's indicator; the last OR level with the
    correction (for ``signed``, ``|copies|`` beside it); the conversion with ``m`` and ``m^2``.
    """
    bits_key, copies_key, sign_key, mantissa_key = randomness.split(key, 4)
    material = _bit_material(bits_key, x.shape)
    first = comm.is_first_party()
    # Round 1: the A2B opens x - r; beside it, the copies of x truncated by 4, 8, ..., 32 bits and the
    # squares of x and of each copy (exact products: every copy that a position uses is below 2^30).
    (c,) = comm.open_shares(x - material.r_value)
    ops = [fixed.plain(x), fixed.pending(x, _TRUNCATIONS)]
    values, squares, _ = fixed.fused_round(ops, [(0, 0), (1, 1)], copies_key)
    copies = jnp.concatenate([x[..., None], values[1]], axis=-1)
    copy_squares = jnp.concatenate([squares[0][..., None], squares[1]], axis=-1)

    # Local: the adder's level 1 and the anticipator's indicator (bit 63 cleared: |x| < 2^62).
    local = fixed.and_monomials([None], [material.r_bits], material.local_products, _local_monomials(c))
    carries, propagate = _combine(local[:5])
    indicator = (local[5] ^ local[6] ^ local[7] ^ local[8]) & _LOW_63
    # Rounds 2 and 3: a prefix-OR level of the indicator beside an adder level, in one opening each.
    prefix = indicator
    for stage in (0, 1):
        words = [prefix, carries, propagate]
        masks, products = material.masks[stage], material.products[stage]
        none, *terms = fixed.and_round(words, masks, products, _STAGES[stage][1])
        prefix = none ^ jnp.where(first, _ALL_ONES, jnp.uint64(0))
        carries, propagate = _combine(terms)
    bits = jnp.where(first, c, jnp.uint64(0)) ^ material.r_bits ^ (carries << _ONE)
    sign_word = bits >> np.uint64(63)
    if signed:
        # Sign extension is linear over XOR: x for x >= 0, ~x = |x| - 1 for x < 0.
        bits = bits ^ (jnp.uint64(0) - sign_word)
        # |copy| = copy - 2 s copy, in a round beside the last one of the prefix OR.
        sign_ops = [fixed.bit(sign_word[..., None]), fixed.plain(copies)]
        (sign, _), (signed_copies,), _ = fixed.fused_round(sign_ops, [(0, 1)], sign_key)
        copies = copies - np.uint64(2) * signed_copies
        sign = sign[..., 0]
    # Round 4: the last prefix-OR level and the correction. X1: bit j is the bit below position j (for
    # signed, bit 0 is the sign: x = -2 has |x| - 1 = 1 and m = 2).
    shifted_bits = bits << _ONE
    if signed:
        shifted_bits = shifted_bits ^ sign_word
    none, *terms = fixed.and_round(
        [prefix, shifted_bits], material.masks[2], material.products[2], _STAGES[2][1]
    )
    p0_x, p0_x_x1, p0_x2, p0_x_x2, p1_x, p1_x_x1, p1_x2, p1_x_x2 = terms
    predicted = none ^ ((none >> _ONE) ^ jnp.where(first, _TOP, jnp.uint64(0)))  # P0 ^ P1
    # Where bit p of the bits is set, the leading one is at the predicted p, else at p - 1; the flag is
    # the bit below it.
    kept = p0_x ^ p1_x
    one_hot_word = kept ^ ((predicted ^ kept) >> _ONE)
    high_word = p0_x_x1 ^ p1_x_x1 ^ ((p0_x2 ^ p1_x2 ^ p0_x_x2 ^ p1_x_x2) >> _ONE)

    # One round: the one-hot and the flags to arithmetic, and their products with the copies of x and
    # their squares, which give m (29 bits) and m^2 (58 bits) exactly.
    positions = range(_POSITIONS)
    ops = [
        fixed.bits(one_hot_word, positions),
        fixed.bits(high_word, positions),
        fixed.plain(copies, take=_GROUPS),
        fixed.plain(copy_squares, take=_GROUPS),
    ]
    products = [(0, 2), (0, 3)]
    if signed:
        ops.append(fixed.plain(sign[..., None]))
        products += [(0, 4), (1, 4)]
    values, out, _ = fixed.fused_round(ops, products, mantissa_key)
    one_hot, high = values[0], values[1]
    m = (out[0] * _table([2 ** _up(j) for j in positions])).sum(-1)
    m2 = (out[1] * _table([2 ** (2 * _up(j)) for j in positions])).sum(-1)
    extra = {}
    if signed:
        negative, negative_high = out[2], out[3]
        # x = -2^-f: |x| - 1 = 0 has no leading one; m = 1 at position 0.
        lone = sign - negative.sum(-1)
        m = m + (lone << np.uint64(_MANTISSA_SCALE))
        m2 = m2 + (lone << np.uint64(2 * _MANTISSA_SCALE))
        extra = {"negative": negative, "negative_high": negative_high, "lone": lone}
    u = m - fixed.constant(1.5, _MANTISSA_SCALE, x.shape)
    # u^2 = m^2 - 3 m + 2.25 at 58 bits: below 2^61 in magnitude (m in [0, 2]).
    square = m2 - (m << np.uint64(_MANTISSA_SCALE)) * np.uint64(3)
    square = square + fixed.constant(2.25, 2 * _MANTISSA_SCALE, x.shape)
    return Normalized(u, fixed.pending(square, _MANTISSA_SCALE), one_hot, high, **extra)


def _combine(terms: list[jax.Array]) -> tuple[jax.Array, jax.Array | None]:
    """A Kogge–Stone level's generate (the XOR of its exclusive terms) and propagate (``None`` for the
    last level)."""
    if len(terms) == 4:
        return terms[0] ^ terms[1] ^ terms[2] ^ terms[3], None
    return terms[0] ^ terms[1] ^ terms[2] ^ terms[3], terms[4]


def _table(values) -> np.ndarray:
    return np.array([int(v) % (1 << 64) for v in values], dtype=np.uint64)


def _weighted(bits: jax.Array, values) -> jax.Array:
    """``sum_j bits[..., j] * values[j]`` for a public table."""
    return (bits * _table(values)).sum(-1)


class _Term(NamedTuple):
    """A part of a result: ``indicator[..., j] * p(u) * factors[j]`` summed over positions ``j``.

    ``indicator``: integer shares (one per position, at most one of all terms' entries is 1);
    ``coefficients``: the polynomial ``p`` in ``u``; ``factors``: public reals per position, the result's
    scale included (a ring value ``p(u) * factor`` is the result).
    """

    indicator: jax.Array
    coefficients: tuple[float, ...]
    factors: tuple[float, ...]


_EXTRA_BITS = 8  # each coefficient carries 8 bits below the result's unit where the result is small
_CLASS_WIDTH = 8
_FIRST_CLASS_BITS = 33 - _EXTRA_BITS  # results below 2^25 units


def _classes(magnitude_bits: Sequence[int]) -> list[tuple[int, list[int]]]:
    """Groups the positions by the size of their result, ``|y| < 2^magnitude_bits[j]`` in the ring.

    The sum ``sum_j C_j u^j`` is formed at ``29 + t`` bits more than the result and must stay below
    2^62, so ``t <= 33 - bits``. The first class (results below ``2^25`` units) gets ``t = 8``: each
    coefficient ``C_j = c_j factor 2^t`` is rounded to ``2^-9`` of a unit of the result, and their sum
    ``sum_j C_j u^j`` (``|u| <= 1/2``) to ``2^-8``. A larger result needs a smaller ``t``: one class for
    each further 8 bits, where the rounding is ``2^-24`` of the result or less (the result is at least
    half its bound). Returns ``(t, positions)`` per nonempty class.
    """
    classes: dict[int, list[int]] = {}
    for j, bits in enumerate(magnitude_bits):
        k = max(0, -(-(bits - _FIRST_CLASS_BITS) // _CLASS_WIDTH))
        classes.setdefault(k, []).append(j)
    return [(_EXTRA_BITS - _CLASS_WIDTH * k, positions) for k, positions in sorted(classes.items())]


def _fold(
    n: Normalized,
    terms: Sequence[_Term],
    key: jax.Array,
    *,
    magnitude_bits: Sequence[int],
    extra=None,
    pending: bool = False,
):
    """``sum over terms of indicator * p(u) * factor`` (``+ extra``), rounded to an integer: 3 rounds.

    The case selection and the magnitude go into the coefficients: ``C_j = sum indicator * c_j * factor
    * 2^t`` is linear in the indicators, so ``sum_j C_j u^j`` is the scaled result, and the polynomial's
    rounds form it directly (Estrin: ``C_0 + C_1 u + C_2 u^2 + C_3 u^3 + u^4 (C_4 + C_5 u + C_6 u^2)``):
    one round opens ``u``, truncates ``u^2`` and gives ``u^3``, ``u^4`` and the products of ``C_1``,
    ``C_2``, ``C_5``, ``C_6`` with ``u`` and ``u^2``; one truncates ``u^3``, ``u^4`` and the upper part
    and multiplies them by ``C_3`` and each other; one truncates the sum. Each class of positions
    (:func:`_classes`) has its coefficients and its final truncation.

    ``magnitude_bits[j]``: ``|result| < 2^bits`` at position ``j``; ``extra(t)``: a ring value added to
    the sum, at the result's scale plus ``29 + t`` bits (all positions then form one class). With
    ``pending``, returns the sums untruncated, as :func:`sjax.primitives.fixed.pending` operands whose
    truncated values add up to the result (2 rounds), for the caller to truncate in the round of its next
    product.
    """
    s = _MANTISSA_SCALE
    if extra is None:
        classes = _classes(magnitude_bits)
    else:  # one class, so that the extra term has one scale
        classes = [(33 - max(magnitude_bits), list(range(_POSITIONS)))]
    # C_j per class: integer shares at the result's scale plus t bits. Every C_j is a public linear form
    # of the indicators, so all of them are one ring product of the concatenated indicators with a public
    # table (a column per class and j): one pass over the indicators instead of one per C_j.
    columns = []
    for t, positions in classes:
        inside = np.zeros(_POSITIONS, dtype=bool)
        inside[positions] = True
        for j in range(_DEGREE + 1):
            columns.append([
                round(term.coefficients[j] * f * 2.0**t) if inside[p] else 0
                for term in terms
                for p, f in enumerate(term.factors)
            ])
    indicators = jnp.concatenate([term.indicator for term in terms], axis=-1)
    table = np.stack([_table(column) for column in columns], axis=-1)
    coefficients = ring.matmul(indicators, jnp.asarray(table))
    width = _DEGREE + 1
    coefficient_sets = [
        [coefficients[..., width * c + j] for j in range(width)] for c in range(len(classes))
    ]
    if s + classes[-1][0] < 1:
        raise ValueError(f"results up to 2^{max(magnitude_bits)} do not fit in the ring with u at 29 bits")
    first_key, second_key, out_key = randomness.split(key, 3)
    # u, u^2 (truncated here), u^3 and u^4; C_1 u, C_2 u^2, C_5 u, C_6 u^2 per class.
    ops = [fixed.plain(n.u), n.square]
    products = [(1, 0), (1, 1)]
    for c in coefficient_sets:
        base = len(ops)
        ops += [fixed.plain(c[1]), fixed.plain(c[2]), fixed.plain(c[5]), fixed.plain(c[6])]
        products += [(base, 0), (base + 1, 1), (base + 2, 0), (base + 3, 1)]
    _, out, _ = fixed.fused_round(ops, products, first_key)
    cube, fourth = out[0], out[1]
    lows, uppers = [], []
    for i, c in enumerate(coefficient_sets):
        c1u, c2u2, c5u, c6u2 = out[2 + 4 * i : 6 + 4 * i]
        lows.append((c[0] << np.uint64(s)) + c1u + c2u2)
        uppers.append((c[4] << np.uint64(s)) + c5u + c6u2)
    # u^3 and u^4 truncated; C_3 u^3 and u^4 (C_4 + C_5 u + C_6 u^2) per class.
    ops = [fixed.pending(cube, s), fixed.pending(fourth, s)]
    products = []
    for upper, c in zip(uppers, coefficient_sets):
        ops += [fixed.pending(upper, s), fixed.plain(c[3])]
        products += [(len(ops) - 1, 0), (1, len(ops) - 2)]
    _, out, _ = fixed.fused_round(ops, products, second_key)
    sums = [low + out[2 * i] + out[2 * i + 1] for i, low in enumerate(lows)]
    if extra is not None:
        sums[0] = sums[0] + extra(classes[0][0])
    parts = [fixed.pending(total, s + t) for total, (t, _) in zip(sums, classes)]
    if pending:
        return parts
    values, _, _ = fixed.fused_round(parts, [], out_key)
    return sum(values)


def _low(n: Normalized) -> jax.Array:
    return n.one_hot - n.high


def reciprocal_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, min_magnitude_bits: int = 0, pending: bool = False
):
    """One party's share of ``1/x`` at scale ``frac_bits``. See :func:`reciprocal`.

    ``min_magnitude_bits``: a public lower bound ``|x| >= 2^(min_magnitude_bits - frac_bits)`` that lets
    the result carry more bits (softmax's sum, at least 1, has ``min_magnitude_bits = frac_bits``).
    ``pending``: return the result as pending operands (one round sooner, see :func:`_fold`), for
    :func:`sjax.primitives.fixed.mul_pending`.
    """
    norm_key, fold_key = randomness.split(key, 2)
    n = normalize_body(x, norm_key, signed=True)
    # 2^(2f - j) restores the magnitude, with the sign; below 2^-f (j > 2f) the reciprocal rounds to 0.
    down = [
        2 ** (2 * frac_bits - j) if min_magnitude_bits <= j <= 2 * frac_bits else 0 for j in range(_POSITIONS)
    ]
    low, high = _RECIPROCAL
    terms = [
        _Term(_low(n) - np.uint64(2) * (n.negative - n.negative_high), low, down),
        _Term(n.high - np.uint64(2) * n.negative_high, high, down),
    ]
    if min_magnitude_bits <= 0:  # x = -2^-f: m = 1 at position 0, negative
        terms.append(_Term(n.lone[..., None], low, (-down[0],)))
    # |1/m| <= 1: the result is at most the factor.
    bits = [d.bit_length() for d in down]
    return _fold(n, terms, fold_key, magnitude_bits=bits, pending=pending)


def reciprocal(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/x`` for positive or negative ``x``.

    Domain: any nonzero representable ``x``; the target ranges ``[1e-2, 1e4]`` and ``[-1e4, -1e-2]`` are
    well inside. Where ``|1/x| < 2^-(f+1)`` the result is 0. ``reciprocal(0)`` is 0 (never NaN or inf).
    Error: ``|y - 1/x| <= |1/x| * 2^-21 + 2^-f + 2^-(f+8)``: the degree-6 polynomials (2.4e-7), the
    mantissa's 26 or more bits and the coefficients' rounding, relative; the final rounding and, where the
    result is small, the coefficients' rounding, absolute.
    Cost: 8 rounds; each party sends ``480 * (n - 1)`` bytes per element; the dealer sends ``5320`` bytes
    per element.
    """
    return run_unary("reciprocal", reciprocal_body, x, key)


def div(x, y: ArithShare, key: jax.Array) -> ArithShare:
    """``x / y`` for a secret divisor: ``x * reciprocal(y)``; ``x`` may be public.

    For a secret ``x`` the reciprocal's last truncation goes out in the round of the product.
    Error: ``|x| * (|1/y| * 2^-21 + 2^-f + 2^-(f+8)) + 2^-f``: the reciprocal's absolute error scales
    with ``|x|``.
    Cost: 9 rounds; each party sends ``496 * (n - 1)`` bytes per element (``488 * (n - 1)`` for a public
    ``x``); the dealer sends ``5368`` bytes per element (``5336``).
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
    frac_bits = y.frac_bits

    def body(numerator, divisor, reciprocal_key, product_key):
        parts = reciprocal_body(divisor, reciprocal_key, frac_bits=frac_bits, pending=True)
        return fixed.mul_pending(parts, numerator, product_key, shift=frac_bits)

    return ArithShare(
        parallel.run(body, (x.shares, y.shares), (reciprocal_key, product_key)), frac_bits=frac_bits
    )


def log_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None, factor: float = 1.0
) -> jax.Array:
    """One party's share of ``factor * log(x)`` for a public real ``factor``: ``x`` at scale ``frac_bits``,
    the result at ``out_scale`` (default ``frac_bits``). See :func:`log`."""
    norm_key, fold_key = randomness.split(key, 2)
    n = normalize_body(x, norm_key, signed=False)
    out_scale = frac_bits if out_scale is None else out_scale
    unit = [factor * 2**out_scale] * _POSITIONS
    terms = [_Term(_low(n), _LOG[0], unit), _Term(n.high, _LOG[1], unit)]
    # (j - f) log 2: exact integer weights times a public constant, at the sum's scale.
    exponent = _weighted(n.one_hot, [j - frac_bits for j in range(_POSITIONS)])

    def extra(t):
        return exponent * fixed.encode_scalar(factor * math.log(2.0), out_scale + _MANTISSA_SCALE + t)

    # |factor log x| < |factor| (|j - f| + 1) log 2 at position j.
    bits = [
        out_scale + max(math.ceil(abs(factor) * (abs(j - frac_bits) + 1)), 1).bit_length()
        for j in range(_POSITIONS)
    ]
    return _fold(n, terms, fold_key, magnitude_bits=bits, extra=extra)


def log(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise natural logarithm.

    Domain: ``x > 0`` (any positive representable value, covering the target ``[1e-3, 1e4]``). For
    ``x <= 0`` the result is finite but meaningless (never NaN).
    Error: below ``2^-f`` plus ``2^-24`` (absolute): the final rounding; the polynomials (3.4e-8), the
    mantissa and the coefficients' rounding.
    Cost: 8 rounds; each party sends ``336 * (n - 1)`` bytes per element; the dealer sends ``4128`` bytes
    per element.
    """
    return run_unary("log", log_body, x, key)


def _root_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, inverse: bool, out_scale: int | None = None,
    pending: bool = False,
):
    norm_key, fold_key = randomness.split(key, 2)
    n = normalize_body(x, norm_key, signed=False)
    exponents = [j - frac_bits for j in range(_POSITIONS)]
    result_scale = frac_bits if out_scale is None else out_scale
    if inverse:
        factors = [2 ** (result_scale - e // 2) if result_scale - e // 2 >= 0 else 0 for e in exponents]
    else:
        factors = [2 ** (e // 2 + result_scale) if e // 2 + result_scale >= 0 else 0 for e in exponents]
    # x = m * 2^e with e = j - f = 2q + odd: sqrt x = sqrt(m * 2^odd) * 2^q. Four cases: the parity of e
    # (a function of the position) and the half of m (the flag).
    terms = []
    for parity, (low, high) in enumerate(_RSQRT if inverse else _SQRT):
        table = [f if e % 2 == parity else 0 for e, f in zip(exponents, factors)]
        terms += [_Term(_low(n), low, table), _Term(n.high, high, table)]
    # The root (below 2, or at most 1 for 1/sqrt) times the factor.
    bits = [f.bit_length() if inverse else f.bit_length() + 1 for f in factors]
    return _fold(n, terms, fold_key, magnitude_bits=bits, pending=pending)


def sqrt_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``sqrt(x)`` at scale ``frac_bits``. See :func:`sqrt`."""
    return _root_body(x, key, frac_bits=frac_bits, inverse=False)


def rsqrt_body(
    x: jax.Array, key: jax.Array, *, frac_bits: int, out_scale: int | None = None, pending: bool = False
):
    """One party's share of ``1/sqrt(x)``: ``x`` at scale ``frac_bits``, the result at ``out_scale``
    (default ``frac_bits``); with ``pending``, as pending operands (see :func:`reciprocal_body`). See
    :func:`rsqrt`."""
    return _root_body(x, key, frac_bits=frac_bits, inverse=True, out_scale=out_scale, pending=pending)


def sqrt(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise square root.

    Domain: ``x >= 0`` (covering the target ``[0, 1e4]``); ``sqrt(0) = 0``. For ``x < 0`` the result is
    finite but meaningless (never NaN).
    Error: relative ``2^-23`` plus ``2^-f + 2^-(f+8)`` absolute (the polynomials' share is 4.2e-9, the
    coefficients' below 2^-24).
    Cost: 8 rounds; each party sends ``448 * (n - 1)`` bytes per element; the dealer sends ``4368`` bytes
    per element.
    """
    return run_unary("sqrt", sqrt_body, x, key)


def rsqrt(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``1/sqrt(x)``.

    Domain: ``x > 0`` (covering the target ``[1e-2, 1e4]``); where the result is below ``2^-(f+1)`` it is
    0; ``rsqrt(0) = 0``. For ``x < 0`` the result is finite but meaningless (never NaN).
    Error: relative ``2^-23`` plus ``2^-f + 2^-(f+8)`` absolute (the polynomials' share is 4.6e-8).
    Cost: 8 rounds; each party sends ``336 * (n - 1)`` bytes per element; the dealer sends ``4128`` bytes
    per element.
    """
    return run_unary("rsqrt", rsqrt_body, x, key)
