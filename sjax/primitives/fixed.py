"""Fixed-point building blocks for protocol bodies, with explicit scales.

Nonlinear approximations need intermediate steps at a higher precision than their inputs: a value in
``[0, 2)`` can carry 30 fractional bits where a general share carries 16. These helpers work on one party's
raw ring shares and take the scales (numbers of fractional bits) as static arguments, so each function
chooses the precision of each step. A ring value ``v`` at scale ``s`` stands for ``v / 2**s``.

Truncation needs every product below ``2**62`` in the ring (see :func:`sjax.truncate`): the docstrings say
what ranges each helper assumes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness
from sjax.primitives.arith import bilinear_body
from sjax.primitives.binary import a2b_body, bit_to_arith_body
from sjax.primitives.truncation import truncate_body

__all__ = [
    "encode_scalar",
    "constant",
    "public_scale",
    "rescale",
    "mul_many",
    "mul",
    "polynomial",
    "polynomials",
    "select_many",
    "bits_of",
    "bits_to_arith",
    "Operand",
    "plain",
    "pending",
    "bit",
    "bits",
    "fused_round",
    "fused_polynomial",
    "fused_polynomials",
    "selected_polynomial",
    "Factor",
    "monomial_products",
    "mask_products",
    "and_monomials",
    "and_round",
]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def encode_scalar(value: float, scale: int) -> np.uint64:
    """A public real as one ring element at ``scale`` (two's complement for negatives)."""
    return np.uint64(int(round(float(value) * 2.0**scale)) % (1 << 64))


def constant(value: float | np.ndarray, scale: int, shape=()) -> jax.Array:
    """A public constant as this party's share: party 0 holds ``round(value * 2**scale)``, others 0."""
    encoded = jnp.asarray(np.round(np.asarray(value, dtype=np.float64) * 2.0**scale).astype(np.int64))
    encoded = jnp.broadcast_to(encoded.astype(jnp.uint64), shape) if shape else encoded.astype(jnp.uint64)
    return jnp.where(comm.is_first_party(), encoded, jnp.uint64(0))


def public_scale(
    x: jax.Array, factor: float, key: jax.Array, *, in_scale: int, out_scale: int, factor_bits: int
) -> jax.Array:
    """``x * factor`` for a public real ``factor`` encoded with ``factor_bits`` bits.

    Needs ``|x * factor| * 2**(in_scale + factor_bits) < 2**62``. Cost: 1 round (0 if no shift is needed).
    """
    product = x * encode_scalar(factor, factor_bits)
    return rescale(product, key, from_scale=in_scale + factor_bits, to_scale=out_scale)


def rescale(x: jax.Array, key: jax.Array | None, *, from_scale: int, to_scale: int) -> jax.Array:
    """Moves a value between scales: an exact local shift up, or a truncation (1 round) down."""
    if to_scale >= from_scale:
        return x << np.uint64(to_scale - from_scale)
    return truncate_body(x, key, bits=from_scale - to_scale)


def mul_many(
    pairs: Sequence[tuple[jax.Array, jax.Array]], key: jax.Array, *, shift: int
) -> list[jax.Array]:
    """Elementwise products of secret pairs, all in one Beaver round, each truncated by ``shift`` bits.

    Cost: 2 rounds (1 when ``shift == 0``), whatever the number of pairs.
    """
    shapes = [jnp.broadcast_shapes(a.shape, b.shape) for a, b in pairs]
    xs = jnp.concatenate([jnp.broadcast_to(a, s).ravel() for (a, _), s in zip(pairs, shapes)])
    ys = jnp.concatenate([jnp.broadcast_to(b, s).ravel() for (_, b), s in zip(pairs, shapes)])
    z = bilinear_body(
        xs, ys, key, product=jnp.multiply, correlation="beaver_triple", count=xs.size, frac_bits=shift
    )
    out, start = [], 0
    for shape in shapes:
        out.append(z[start : start + _size(shape)].reshape(shape))
        start += _size(shape)
    return out


def mul(x: jax.Array, y: jax.Array, key: jax.Array, *, shift: int) -> jax.Array:
    """One elementwise product of secrets, truncated by ``shift`` bits. Cost: 2 rounds (1 if no shift)."""
    return mul_many([(x, y)], key, shift=shift)[0]


def select_many(
    bits: Sequence[jax.Array], choices: Sequence[tuple[jax.Array, jax.Array]], key: jax.Array
) -> list[jax.Array]:
    """For integer bits ``c``: ``a`` where ``c`` is 1 else ``b``, for every ``(c, (a, b))``; one round."""
    products = mul_many([(c, a - b) for c, (a, b) in zip(bits, choices)], key, shift=0)
    return [b + p for p, (_, b) in zip(products, choices)]


def polynomials(
    x: jax.Array,
    coefficient_sets: Sequence[Sequence[float]],
    key: jax.Array,
    *,
    scale: int,
    out_scale: int | None = None,
) -> list[jax.Array]:
    """``sum_j c[j] * x**j`` for each coefficient set ``c``, sharing one computation of the powers of ``x``.

    The powers come from a log-depth tree (every power up to twice the highest known one, one batched
    product round per level). ``x`` and its powers are at ``scale``: they must satisfy
    ``|x^i * x^j| * 2**(2 * scale) < 2**62``. Each sum is formed exactly at ``2 * scale`` bits and truncated
    once, so ``sum_j |c_j x^j| < 2**(62 - 2 * scale)``.

    Cost: ``2 * ceil(log2(degree))`` rounds for the powers, then 1 round for all the sums.
    """
    out_scale = scale if out_scale is None else out_scale
    degree = max(len(c) for c in coefficient_sets) - 1
    levels = math.ceil(math.log2(degree)) if degree > 1 else 0
    keys = randomness.split(key, levels + 1)
    powers = {1: x}
    known = 1
    for level in range(levels):
        targets = list(range(known + 1, min(2 * known, degree) + 1))
        pairs = [(powers[known], powers[p - known]) for p in targets]
        for p, value in zip(targets, mul_many(pairs, keys[level], shift=scale)):
            powers[p] = value
        known = min(2 * known, degree)
    totals = []
    for coefficients in coefficient_sets:
        total = constant(coefficients[0], 2 * scale, x.shape)
        for j in range(1, len(coefficients)):
            total = total + powers[j] * encode_scalar(coefficients[j], scale)
        totals.append(total)
    if out_scale >= 2 * scale:
        return [rescale(t, None, from_scale=2 * scale, to_scale=out_scale) for t in totals]
    # All the sums truncated together, in one round.
    stacked = rescale(jnp.stack(totals), keys[-1], from_scale=2 * scale, to_scale=out_scale)
    return list(stacked)


def polynomial(
    x: jax.Array, coefficients: Sequence[float], key: jax.Array, *, scale: int, out_scale: int | None = None
) -> jax.Array:
    """One polynomial: see :func:`polynomials`."""
    return polynomials(x, [coefficients], key, scale=scale, out_scale=out_scale)[0]


def bits_of(x: jax.Array, key: jax.Array) -> jax.Array:
    """XOR shares of the 64 bits of the ring value ``x`` (7 rounds)."""
    return a2b_body(x, key)


def bits_to_arith(words: jax.Array, positions: Sequence[int], key: jax.Array) -> jax.Array:
    """Integer (scale 0) additive shares of the chosen bits of XOR-shared words, stacked on a new last axis.

    Cost: 1 round; each party sends ``8 * (n - 1) * len(positions)`` bytes per word.
    """
    picked = jnp.stack([(words >> np.uint64(p)) & np.uint64(1) for p in positions], axis=-1)
    return bit_to_arith_body(picked, key)


# -- fused rounds: truncations, B2A conversions and products in one opening -------------------------
#
# A Beaver product opens its operands masked (x - a) and a truncation opens its input masked (z + r). Once
# opened, each operand is a public part plus a combination of dealer masks with public coefficients:
#
# * a plain secret x, opened as e = x - b:            x = e + b;
# * a pending truncation of z by s bits (the probabilistic truncation of sjax.truncate), opened as
#   c = z + 2^62 + r:                                 z >> s = P(c) - r_low + (1 - 2 c_63) 2^(63-s) r_63;
# * an XOR-shared bit v, opened as w = v ^ rb:        v = w + (1 - 2 w) rb.
#
# The product of two such operands is then the product of the public parts, public multiples of the
# masks, and public multiples of products of masks, which the dealer supplies. So one round opens every
# operand, and yields every operand's value (truncated, converted) and every requested product of two
# operands, exactly (no truncation of the products). A chain of fixed-point products costs one round per
# product rather than two: each product is truncated when it is opened as an operand of the next one.
# The truncation is the same as sjax.truncate's (stochastic rounding, exact for |z| < 2^62), so nothing is
# lost in accuracy or in the range where it is correct.

_OFFSET = np.uint64(1 << 62)
_LOW_63 = np.uint64(2**63 - 1)


class Operand:
    """An operand of :func:`fused_round`: see :func:`plain`, :func:`pending`, :func:`bit` and :func:`bits`."""

    __slots__ = ("kind", "value", "bits", "digits", "positions", "take")

    def __init__(
        self, kind: str, value: jax.Array, bits=0, digits: tuple[int, ...] = (), positions=None, take=None
    ):
        self.kind, self.value, self.bits, self.digits = kind, value, bits, tuple(digits)
        self.positions, self.take = positions, take


def _check_take(take, value: jax.Array):
    if take is None:
        return None
    take = tuple(int(t) for t in take)
    if value.ndim == 0 or not all(0 <= t < value.shape[-1] for t in take):
        raise ValueError(f"take indexes the last axis of the operand, of shape {value.shape}: got {take}")
    return take


def plain(x: jax.Array, take: Sequence[int] | None = None) -> Operand:
    """A secret used as it is (opened with a Beaver mask).

    With ``take``, the operand's value is ``x[..., take]``: each entry of ``x`` is opened once and the
    opened values and masks are gathered (a public re-indexing, so entries may repeat).
    """
    return Operand("plain", x, take=_check_take(take, x))


def pending(z: jax.Array, bits, digits: Sequence[int] = ()) -> Operand:
    """A secret ring value ``z`` to be truncated by ``bits`` (``|z| < 2^62``) before use.

    ``bits`` may be a sequence of amounts: the value is then the truncations of ``z`` by each of them,
    on a new last axis, from one opening of ``z``.

    With ``digits = (w_0, w_1, ...)`` the round also returns what gives the truncated value ``k`` modulo
    ``2^m``, ``m = sum(w_i)``, digit by digit: ``k = C - rho (mod 2^m)`` for a public ``C`` and the low
    ``m`` bits ``rho`` of the dealer's mask, and the dealer's one-hot vector (length ``2^w_i``, on a new
    last axis) of each digit of ``rho`` (see :func:`fused_round`); needs ``m <= 63 - bits``.
    """
    amounts = (bits,) if isinstance(bits, (int, np.integer)) else tuple(bits)
    if not amounts or not all(0 < int(b) < 62 for b in amounts):
        raise ValueError(f"can truncate by 1 to 61 bits, got {bits}")
    if digits and len(amounts) > 1:
        raise ValueError("one-hot digits need a single truncation amount")
    if sum(digits) > 63 - amounts[0]:
        width = sum(digits)
        raise ValueError(f"one-hot digits of {width} bits need a truncation by at most {63 - width}")
    if isinstance(bits, (int, np.integer)):
        return Operand("pending", z, int(bits), tuple(int(w) for w in digits))
    return Operand("pending", z, tuple(int(b) for b in amounts))


def bit(word: jax.Array) -> Operand:
    """An XOR-shared bit (bit 0 of ``word``; the other bits are ignored), used as the integer 0 or 1."""
    return Operand("bit", word & np.uint64(1))


def bits(word: jax.Array, positions: Sequence[int]) -> Operand:
    """The bits of an XOR-shared word at ``positions``, as integers 0 or 1 on a new last axis.

    The whole word is opened once (8 bytes per element, however many positions), masked by a uniform
    word; the dealer supplies additive shares of the mask's bits at those positions.
    """
    positions = tuple(int(p) for p in positions)
    if not positions or not all(0 <= p < 64 for p in positions):
        raise ValueError(f"bit positions are 0 to 63, got {positions}")
    return Operand("bits", word, positions=positions)


def _amounts(op: Operand) -> np.ndarray:
    """A pending operand's truncation amounts, shaped to broadcast against its value."""
    return np.asarray(op.bits, dtype=np.uint64)


def _several(op: Operand) -> bool:
    return op.kind == "pending" and isinstance(op.bits, tuple)


def _value_shape(op: Operand) -> tuple[int, ...]:
    shape = tuple(op.value.shape)
    if op.kind == "bits":
        return shape + (len(op.positions),)
    if _several(op):
        return shape + (len(op.bits),)
    if op.take is not None:
        return shape[:-1] + (len(op.take),)
    return shape


def _take(op: Operand, array: jax.Array) -> jax.Array:
    return array if op.take is None else array[..., np.asarray(op.take)]


def _bits_at(word: jax.Array, positions: tuple[int, ...]) -> jax.Array:
    return (word[..., None] >> np.asarray(positions, dtype=np.uint64)) & np.uint64(1)


def _pending_parts(op: Operand, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The low part ``(r mod 2^63) >> bits`` and the top bit of a truncation mask, in the value's shape."""
    if _several(op):
        mask = mask[..., None]
        return (mask & _LOW_63) >> _amounts(op), jnp.broadcast_to(mask >> np.uint64(63), _value_shape(op))
    return (mask & _LOW_63) >> np.uint64(op.bits), mask >> np.uint64(63)


def _components(op: Operand) -> list[str]:
    return {"plain": ["mask"], "pending": ["low", "msb"], "bit": ["bit"], "bits": ["bits"]}[op.kind]


def _vanishes(a: Operand, ca: str, b: Operand, cb: str) -> bool:
    """Whether the coefficient of the product of two mask components is 0 modulo 2^64."""
    if not ca == cb == "msb":
        return False
    return (63 - max(np.atleast_1d(a.bits))) + (63 - max(np.atleast_1d(b.bits))) >= 64


def fused_round(
    operands: Sequence[Operand], products: Sequence[tuple[int, int]], key: jax.Array
) -> tuple[list[jax.Array], list[jax.Array], dict[int, jax.Array]]:
    """Opens every operand in one round; returns their values, the requested products and one-hots.

    Returns ``(values, out, onehots)``: ``values[i]`` is this party's share of operand ``i``'s value (the
    truncated value of a pending operand, the integer bit of a bit operand, the integer bits of a bits
    operand, the secret itself for a plain one); ``out[k]`` is its share of ``values[i] * values[j]`` for
    ``products[k] = (i, j)`` (with broadcasting, exact in the ring: no truncation); ``onehots[i]``, for a
    pending operand with ``digits``, is ``(C, [h_0, h_1, ...])``: the public ``C`` (``uint64``, the
    value's shape) and this party's shares of the one-hot vectors ``h_i`` of the digits of ``rho``, with
    ``k = C - rho`` modulo ``2^sum(digits)``.

    Cost: 1 round (one message of the arithmetic operands, one of the bits: they go out together); each
    party sends ``8 * (n - 1)`` bytes per opened element (a bits operand opens one word per element, a
    pending operand with several amounts one value); the dealer sends ``8`` bytes per derived element
    (2 per pending element and amount, 1 per bit, ``2^w`` per one-hot digit, 1 to 3 per product element).
    Leakage: none; every opened value is masked by a uniform dealer value.
    """
    operands = list(operands)
    opened_shapes = [tuple(op.value.shape) for op in operands]
    shapes = [_value_shape(op) for op in operands]
    xor = [i for i, op in enumerate(operands) if op.kind in ("bit", "bits")]
    derived_shapes: list[tuple[int, ...]] = []
    for op, opened, shape in zip(operands, opened_shapes, shapes):
        if op.kind == "pending":
            part = shape if _several(op) else opened
            derived_shapes += [part, part] + [opened + (1 << w,) for w in op.digits]
        elif op.kind == "bit":
            derived_shapes.append(opened)
        elif op.kind == "bits":
            derived_shapes.append(shape)
    terms = []  # (product index, component of i, component of j)
    for k, (i, j) in enumerate(products):
        for ci in _components(operands[i]):
            for cj in _components(operands[j]):
                if not _vanishes(operands[i], ci, operands[j], cj):
                    terms.append((k, ci, cj))
                    derived_shapes.append(jnp.broadcast_shapes(shapes[i], shapes[j]))

    def mask_parts(op: Operand, mask: jax.Array) -> dict[str, jax.Array]:
        """The mask components in the value's shape."""
        if op.kind == "plain":
            return {"mask": _take(op, mask)}
        if op.kind == "bit":
            return {"bit": mask & np.uint64(1)}
        if op.kind == "bits":
            return {"bits": _bits_at(mask, op.positions)}
        low, msb = _pending_parts(op, mask)
        return {"low": _take(op, low), "msb": _take(op, msb)}

    def derive(*masks):
        out = []
        for op, mask in zip(operands, masks):
            if op.kind == "pending":
                out += list(_pending_parts(op, mask))
                offset, low = 0, out[-2]
                for width in op.digits:
                    digit = (low >> np.uint64(offset)) & np.uint64((1 << width) - 1)
                    entries = jnp.arange(1 << width, dtype=jnp.uint64)
                    out.append((digit[..., None] == entries).astype(jnp.uint64))
                    offset += width
            elif op.kind == "bit":
                out.append(mask & np.uint64(1))
            elif op.kind == "bits":
                out.append(_bits_at(mask, op.positions))
        parts = [mask_parts(op, m) for op, m in zip(operands, masks)]
        for k, ci, cj in terms:
            i, j = products[k]
            out.append(parts[i][ci] * parts[j][cj])
        return tuple(out)

    def _count(shape_list):
        return sum(_size(s) for s in shape_list)

    correlations = [("fused_round", _count(opened_shapes))]
    if any(op.kind == "pending" for op in operands):
        correlations.append(
            ("truncation_triple", _count(s for s, op in zip(shapes, operands) if op.kind == "pending"))
        )
    if xor:
        correlations.append(("random_bit", _count(shapes[i] for i in xor)))
    material = randomness.opening_material(
        key, opened_shapes, derived_shapes, derive, xor=xor, correlations=correlations
    )
    free, derived = material[: len(operands)], list(material[len(operands) :])
    # This party's shares of each operand's mask components (and one-hots), in the value's shape.
    share_parts: list[dict[str, jax.Array]] = []
    onehot_shares: dict[int, jax.Array] = {}
    for i, (op, mask) in enumerate(zip(operands, free)):
        if op.kind == "plain":
            share_parts.append({"mask": _take(op, mask)})
        elif op.kind == "bit":
            share_parts.append({"bit": derived.pop(0)})
        elif op.kind == "bits":
            share_parts.append({"bits": derived.pop(0)})
        else:
            low, msb = derived.pop(0), derived.pop(0)
            share_parts.append({"low": _take(op, low), "msb": _take(op, msb)})
            if op.digits:
                onehot_shares[i] = [derived.pop(0) for _ in op.digits]
    product_shares = derived

    first = comm.is_first_party()
    arithmetic = [i for i, op in enumerate(operands) if op.kind not in ("bit", "bits")]
    masked = []
    for i in arithmetic:
        op, mask = operands[i], free[i]
        if op.kind == "plain":
            masked.append(op.value - mask)
        else:
            masked.append(op.value + jnp.where(first, _OFFSET, jnp.uint64(0)) + mask)
    opened: dict[int, jax.Array] = {}
    if arithmetic:
        flat = comm.open_shares(jnp.concatenate([m.ravel() for m in masked]))[0]
        start = 0
        for i in arithmetic:
            opened[i] = flat[start : start + _size(opened_shapes[i])].reshape(opened_shapes[i])
            start += _size(opened_shapes[i])
    if xor:
        flat = comm.open_bits(jnp.concatenate([(operands[i].value ^ free[i]).ravel() for i in xor]))[0]
        start = 0
        for i in xor:
            opened[i] = flat[start : start + _size(opened_shapes[i])].reshape(opened_shapes[i])
            start += _size(opened_shapes[i])

    # Public parts and public coefficients of the mask components, in the value's shape.
    public, coefficients = [], []
    for i, op in enumerate(operands):
        c = opened[i]
        if op.kind == "plain":
            c = _take(op, c)
            public.append(c)
            coefficients.append({"mask": jnp.ones_like(c)})
        elif op.kind in ("bit", "bits"):
            c = c & np.uint64(1) if op.kind == "bit" else _bits_at(c, op.positions)
            public.append(c)
            coefficients.append({op.kind: jnp.uint64(1) - jnp.uint64(2) * c})
        else:
            amounts = _amounts(op)
            if _several(op):
                c = c[..., None]
            c_msb, c_low = c >> np.uint64(63), c & _LOW_63
            top = np.uint64(63) - amounts
            value = (c_low >> amounts) - (_OFFSET >> amounts) + (c_msb << top)
            msb = (jnp.uint64(1) - jnp.uint64(2) * c_msb) << top
            if _several(op):
                value, msb = (jnp.broadcast_to(v, _value_shape(op)) for v in (value, msb))
            value, msb = _take(op, value), _take(op, msb)
            public.append(value)
            coefficients.append({"low": jnp.full_like(value, np.uint64(2**64 - 1)), "msb": msb})

    def linear(i):
        total = jnp.where(first, public[i], jnp.uint64(0))
        for name, share in share_parts[i].items():
            total = total + coefficients[i][name] * share
        return total

    values = [linear(i) for i in range(len(operands))]
    out = []
    for k, (i, j) in enumerate(products):
        z = jnp.where(first, public[i] * public[j], jnp.uint64(0))
        for name, share in share_parts[j].items():
            z = z + public[i] * coefficients[j][name] * share
        for name, share in share_parts[i].items():
            z = z + public[j] * coefficients[i][name] * share
        out.append(z)
    for (k, ci, cj), share in zip(terms, product_shares):
        i, j = products[k]
        out[k] = out[k] + coefficients[i][ci] * coefficients[j][cj] * share
    onehots = {i: (public[i], shares) for i, shares in onehot_shares.items()}
    return values, out, onehots


def fused_polynomial(
    x: Operand, coefficients: Sequence[float], key: jax.Array, *, scale: int, square: Operand | None = None
) -> jax.Array:
    """One polynomial: see :func:`fused_polynomials`."""
    return fused_polynomials(x, [coefficients], key, scale=scale, square=square)[0]


def fused_polynomials(
    x: Operand,
    coefficient_sets: Sequence[Sequence[float]],
    key: jax.Array,
    *,
    scale: int,
    square: Operand | None = None,
) -> list[jax.Array]:
    """``sum_j c[j] x^j`` for each coefficient set, at ``2 * scale`` bits, not truncated, sharing the powers
    of ``x``, with one fused round (:func:`fused_round`) per level of powers.

    ``x`` is a :func:`plain` value at ``scale`` or a :func:`pending` one that truncates to ``scale``. The
    last round multiplies the highest power by the polynomial of the upper coefficients (Estrin's last
    step), so ``R`` rounds reach degree ``2^(R-1) + 2^(R-2)`` (3 for 2 rounds, 6 for 3, 12 for 4, 24 for
    5). A caller that already has ``x^2`` passes it as ``square`` (a :func:`pending` value at
    ``2 * scale`` that truncates to ``scale``; ``x`` then :func:`plain`): that saves the first round, so
    ``R`` rounds reach degree ``2^R + 2^(R-1)`` (3 for 1 round, 6 for 2, 12 for 3). The result's
    truncation is left to the caller, who can fuse it with the next product. Ranges: every power, partial
    sum and result below ``2^(62 - 2 * scale)`` in magnitude.

    Cost: ``R`` rounds as above; each round opens the powers it multiplies.
    """
    degree = max(len(c) for c in coefficient_sets) - 1
    values: dict[int, jax.Array] = {}
    if x.kind == "plain":
        values[1] = x.value
    waiting: dict[int, Operand] = {1: x} if x.kind == "pending" else {}
    if square is not None:
        if x.kind != "plain" or square.kind != "pending":
            raise ValueError("with a square, x must be a plain operand and the square a pending one")
        waiting[2] = square
    shape = x.value.shape

    def combination(powers, coefficient_list, offset):
        """``sum c[offset + j] x^j`` over known values, at ``2 * scale`` bits."""
        padded = list(coefficient_list) + [0.0] * (degree + 1 - len(coefficient_list))
        total = constant(padded[offset], 2 * scale, shape)
        for j in powers:
            if offset + j <= degree:
                total = total + values[j] * encode_scalar(padded[offset + j], scale)
        return total

    keys = iter(randomness.split(key, 8))
    while True:
        known = max(values, default=0)
        top = max(waiting) if waiting else known
        ops, index = [], {}
        for p, op in waiting.items():
            index[p] = len(ops)
            ops.append(op)
        if top + known >= degree:
            # Final round: sum_{j < top} c_j x^j + x^top * (sum_j c_{top + j} x^j over the known values).
            if top not in index:
                index[top] = len(ops)
                ops.append(plain(values[top]))
            uppers = []
            for coefficients in coefficient_sets:
                uppers.append(len(ops))
                ops.append(pending(combination(list(values), coefficients, top), scale))
            opened, products, _ = fused_round(ops, [(index[top], u) for u in uppers], next(keys))
            for p in waiting:
                values[p] = opened[index[p]]
            return [
                combination([j for j in values if j < top], coefficients, 0) + product
                for coefficients, product in zip(coefficient_sets, products)
            ]
        # A level of powers: the highest waiting power times every power up to it.
        for p in range(1, top + 1):
            if p not in index:
                index[p] = len(ops)
                ops.append(plain(values[p]))
        pairs = [(index[top], index[p]) for p in range(1, top + 1)]
        opened, out, _ = fused_round(ops, pairs, next(keys))
        for p in waiting:
            values[p] = opened[index[p]]
        waiting = {top + p: pending(z, scale) for p, z in zip(range(1, top + 1), out)}


def selected_polynomial(
    u: Operand,
    cases: Sequence[tuple[jax.Array, Sequence[float]]],
    key: jax.Array,
    *,
    scale: int,
    u_scale: int = 29,
) -> jax.Array:
    """``sum over cases of indicator * p_case(u)`` at ``scale`` bits (not truncated), for polynomials of
    degree 6 or 7: 3 fused rounds.

    ``u`` is a :func:`plain` value at ``u_scale`` bits or a :func:`pending` one that truncates to it;
    ``cases``: integer indicators (at most one is 1) with their polynomial's coefficients. The
    coefficients ``C_k = sum indicator * c_k`` (at ``scale - u_scale`` bits) are linear in the indicators,
    so Estrin's scheme ``C_0 + C_1 u + u^2 (C_2 + C_3 u) + u^4 (C_4 + C_5 u + u^2 (C_6 + C_7 u))`` gives the
    selected polynomial: one round forms ``u^2`` and the ``C_k u`` for odd ``k``; one truncates ``u^2``
    and ``C_2 + C_3 u`` (and ``C_6 + C_7 u``) and forms ``u^4`` and their products with ``u^2`` (degree 6:
    ``C_6 u^2``); one truncates ``u^4`` and the upper part and multiplies them. Every partial sum must
    stay below ``2^62`` at ``scale`` bits.
    """
    degree = len(cases[0][1]) - 1
    if any(len(cs) != degree + 1 for _, cs in cases):
        raise ValueError("every case needs a polynomial of the same degree")
    if degree not in (6, 7):
        raise ValueError(f"selected_polynomial takes degree 6 or 7, got {degree}")
    s = u_scale
    c = [
        sum(indicator * encode_scalar(cs[k], scale - s) for indicator, cs in cases)
        for k in range(degree + 1)
    ]
    first_key, second_key, third_key = randomness.split(key, 3)
    odd = list(range(1, degree + 1, 2))
    ops = [u] + [plain(c[k]) for k in odd]
    _, (square, *odd_terms), _ = fused_round(ops, [(0, 0)] + [(i, 0) for i in range(1, len(ops))], first_key)
    times_u = dict(zip(odd, odd_terms))
    top = pending((c[6] << np.uint64(s)) + times_u[7], s) if degree == 7 else plain(c[6])
    ops = [pending(square, s), pending((c[2] << np.uint64(s)) + times_u[3], s), top]
    _, (fourth, middle, upper_square), _ = fused_round(ops, [(0, 0), (0, 1), (0, 2)], second_key)
    upper = (c[4] << np.uint64(s)) + times_u[5] + upper_square
    _, (highest,), _ = fused_round([pending(fourth, s), pending(upper, s)], [(0, 1)], third_key)
    return (c[0] << np.uint64(s)) + times_u[1] + middle + highest


# -- AND monomials of XOR-shared words, one round for any number of factors --------------------------
#
# An AND triple multiplies two XOR-shared words in a round. A product of k factors costs the same one
# round when each factor is a public part plus its mask: with every word w opened as E = w ^ a, a factor
# F = (shift(w) & m) ^ k (public shift, AND mask m, XOR constant k) is the public word
# (shift(E) & m) ^ k XOR the masked part shift(a) & m, and
#
#     prod_f F_f = XOR over subsets S of the factors of  prod_{f not in S} public_f & prod_{f in S} m_f
#                  & prod_{f in S} shift_f(a_f),
#
# so the dealer supplies XOR shares of the products of two or more shifted masks, and the parties combine
# them locally. A logical shift distributes over AND, so a product of masks shifted the same way is
# the product with the smallest shift taken out, shifted: monomials that differ by a common shift (the
# levels of a prefix computation) share the dealer's products. A word that the dealer itself drew (the
# random r of an A2B) needs no opening at all: its public part is 0 and its mask is itself.


class Factor(NamedTuple):
    """One factor of an AND monomial: ``(shift(words[word]) & and_mask) ^ xor_mask``.

    ``shift > 0`` shifts left, ``shift < 0`` right (logical shifts); ``and_mask`` and ``xor_mask`` are
    public words (``None``: all ones and zero).
    """

    word: int
    shift: int = 0
    and_mask: object = None
    xor_mask: object = None


Monomial = Sequence[Factor]
_ALL_ONES = np.uint64(2**64 - 1)


def _shifted(word: jax.Array, shift: int) -> jax.Array:
    if shift > 0:
        return word << np.uint64(shift)
    if shift < 0:
        return word >> np.uint64(-shift)
    return word


def _canonical(factors: Sequence[Factor]) -> tuple[tuple[tuple[int, int], ...], int]:
    """The dealer's product for a subset of factors, and the shift that turns it into theirs."""
    shifts = [f.shift for f in factors]
    common = min(shifts) if min(shifts) >= 0 else (max(shifts) if max(shifts) <= 0 else 0)
    return tuple(sorted((f.word, f.shift - common) for f in factors)), common


def _subsets(n: int):
    return [tuple(i for i in range(n) if s >> i & 1) for s in range(1 << n)]


def monomial_products(monomials: Sequence[Monomial]) -> list[tuple[tuple[int, int], ...]]:
    """The products of shifted masks (as ``((word, shift), ...)``) the dealer supplies for ``monomials``."""
    keys: dict[tuple, None] = {}
    for monomial in monomials:
        for subset in _subsets(len(monomial)):
            if len(subset) >= 2:
                keys.setdefault(_canonical([monomial[i] for i in subset])[0], None)
    return list(keys)


def mask_products(masks: Sequence[jax.Array], products) -> list[jax.Array]:
    """The dealer's side: the AND of the shifted masks of each product of :func:`monomial_products`."""
    out = []
    for product in products:
        total = None
        for word, shift in product:
            term = _shifted(masks[word], shift)
            total = term if total is None else total & term
        out.append(total)
    return out


def and_monomials(
    publics: Sequence[jax.Array | None],
    masks: Sequence[jax.Array],
    products: dict,
    monomials: Sequence[Monomial],
) -> list[jax.Array]:
    """This party's XOR shares of each monomial (local).

    ``publics[w]``: the opened word ``w ^ a`` (``None`` for a word the dealer drew, public part 0);
    ``masks[w]``: this party's share of the mask ``a``; ``products``: its shares of the dealer's products,
    by :func:`monomial_products` key.
    """
    first = comm.is_first_party()
    out = []
    for monomial in monomials:
        parts = []
        for f in monomial:
            public = publics[f.word]
            public = jnp.uint64(0) if public is None else _shifted(public, f.shift)
            if f.and_mask is not None:
                public = public & f.and_mask
            if f.xor_mask is not None:
                public = public ^ f.xor_mask
            parts.append(public)
        total = jnp.uint64(0)
        for subset in _subsets(len(monomial)):
            coefficient = None
            for i, f in enumerate(monomial):
                term = f.and_mask if i in subset else parts[i]
                if term is not None:
                    coefficient = term if coefficient is None else coefficient & term
            if not subset:
                share = jnp.where(first, coefficient, jnp.uint64(0))
            else:
                if len(subset) == 1:
                    f = monomial[subset[0]]
                    secret = _shifted(masks[f.word], f.shift)
                else:
                    key, common = _canonical([monomial[i] for i in subset])
                    secret = _shifted(products[key], common)
                share = secret if coefficient is None else secret & coefficient
            total = total ^ share
        out.append(total)
    return out


def and_round(
    words: Sequence[jax.Array], masks: Sequence[jax.Array], products: dict, monomials: Sequence[Monomial]
) -> list[jax.Array]:
    """XOR shares of AND monomials of XOR-shared ``words`` (all of one shape), in one round.

    ``masks``: this party's shares of uniform words, one per word; ``products``: its shares of the
    dealer's :func:`mask_products` of them for :func:`monomial_products` of ``monomials`` (drawn
    beforehand, so that one correlation can serve several rounds).

    Cost: 1 round; each party sends ``8 * (n - 1)`` bytes per word and element; the dealer supplies one
    word per product and element.
    """
    opened = comm.open_bits(jnp.stack([w ^ m for w, m in zip(words, masks)]))[0]
    return and_monomials(list(opened), masks, products, monomials)
