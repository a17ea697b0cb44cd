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
