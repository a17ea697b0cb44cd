"""softmax and log_softmax along an axis, and layer normalisation.

softmax subtracts the row maximum (a tree of comparisons), so every exponential has a non-positive
argument and carries a 30-bit mantissa; the row sum lies in ``[1, L]`` and is inverted (or, for
log_softmax, its logarithm taken) at 30 bits. The result's error is the final rounding, independent of
the row length and of the spread of the logits.

layer_norm centres each row at 30 fractional bits and takes ``1/sqrt`` of the variance at 29.

Leakage: none.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax.parallel import simulate
from sjax.primitives import fixed
from sjax.primitives.exponential import exp_body
from sjax.primitives.normalize import log_body, reciprocal_body, rsqrt_body
from sjax.primitives.order import _reduce_body
from sjax.shares import ArithShare, _normalize_axis

__all__ = ["softmax", "log_softmax", "layer_norm"]

_SCALE = 30


def _shifted_exponentials(x: jax.Array, key: jax.Array, *, frac_bits: int):
    """``(x - max, exp(x - max) at 30 bits, sum at 30 bits)`` over the last axis."""
    max_key, exp_key = randomness.split(key, 2)
    largest, _ = _reduce_body(x, None, max_key, largest=True)
    shifted = x - largest[..., None]
    e = exp_body(shifted, exp_key, frac_bits=frac_bits, out_scale=_SCALE, nonpositive=True)
    return shifted, e, e.sum(axis=-1)


def softmax_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of softmax over the last axis, at scale ``frac_bits``."""
    core_key, inverse_key, product_key = randomness.split(key, 3)
    _, e, total = _shifted_exponentials(x, core_key, frac_bits=frac_bits)
    # The sum is at least 1 (the maximum contributes exp(0)), which lets 1/sum keep 29 bits.
    inverse = reciprocal_body(total, inverse_key, frac_bits=_SCALE, min_magnitude_bits=_SCALE)
    return fixed.mul(e, inverse[..., None], product_key, shift=2 * _SCALE - frac_bits)


def log_softmax_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of log_softmax over the last axis, at scale ``frac_bits``."""
    core_key, log_key = randomness.split(key, 2)
    shifted, _, total = _shifted_exponentials(x, core_key, frac_bits=frac_bits)
    log_total = log_body(total, log_key, frac_bits=_SCALE, out_scale=frac_bits)
    return shifted - log_total[..., None]


def _along_axis(name: str, body, x: ArithShare, key, axis: int) -> ArithShare:
    if not isinstance(x, ArithShare):
        raise TypeError(f"{name} takes an ArithShare, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{name} needs an axis; got a 0-d share")
    key = randomness.check_key(key)
    axis = _normalize_axis(axis, x.ndim)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    out = simulate.run(functools.partial(body, frac_bits=x.frac_bits), (moved,), (key,))
    return ArithShare(jnp.moveaxis(out, -1, axis + 1), frac_bits=x.frac_bits)


def softmax(x: ArithShare, key: jax.Array, axis: int = -1) -> ArithShare:
    """``exp(x) / sum(exp(x))`` along ``axis``.

    Domain: logits whose differences within a row are representable; rows of any length.
    Error: absolute, below ``2^-f`` plus ``L * 2^-30`` for rows of length ``L``.
    Cost: ``9 * ceil(log2 L) + 44`` rounds (80 for L = 10, 107 for L = 100); each party sends about
    ``900 * (n - 1)`` bytes per element (949 for L = 10, 872 for L = 100).
    """
    return _along_axis("softmax", softmax_body, x, key, axis)


def log_softmax(x: ArithShare, key: jax.Array, axis: int = -1) -> ArithShare:
    """``x - max - log(sum(exp(x - max)))`` along ``axis``.

    Domain: as :func:`softmax`. Error: absolute, below ``2^-f`` (plus ``L * 2^-30``).
    Cost: ``9 * ceil(log2 L) + 40`` rounds (76 for L = 10, 103 for L = 100); each party sends about
    ``850 * (n - 1)`` to ``920 * (n - 1)`` bytes per element.
    """
    return _along_axis("log_softmax", log_softmax_body, x, key, axis)


_MEAN_SCALE = 24
_SQUARE_SCALE = 20
_INVERSE_STD_SCALE = 30


def layer_norm_body(x: jax.Array, key: jax.Array, *, frac_bits: int, epsilon: float) -> jax.Array:
    """One party's share of ``(x - mean) / sqrt(var + epsilon)`` over the last axis, at ``frac_bits``."""
    mean_key, narrow_key, square_key, halve_key, var_key, rsqrt_key, product_key = randomness.split(key, 7)
    length = x.shape[-1]
    extra = int(np.ceil(np.log2(length))) if length > 1 else 0
    # mean = sum * (2^(24 + extra) / L), truncated by frac_bits + extra: at 24 bits.
    factor = np.uint64(round(2.0 ** (_MEAN_SCALE + extra) / length))
    mean = fixed.rescale(
        x.sum(-1) * factor, mean_key, from_scale=frac_bits + _MEAN_SCALE + extra, to_scale=_MEAN_SCALE
    )
    centred = (x << np.uint64(_MEAN_SCALE - frac_bits)) - mean[..., None]
    narrow = fixed.rescale(centred, narrow_key, from_scale=_MEAN_SCALE, to_scale=_SQUARE_SCALE)
    squares = fixed.mul(narrow, narrow, square_key, shift=_SQUARE_SCALE)
    # var = (sum / 2^extra) * (2^extra / L): two truncations keep the products small.
    halved = fixed.rescale(squares.sum(-1), halve_key, from_scale=_SQUARE_SCALE + extra, to_scale=_SQUARE_SCALE)
    variance = fixed.public_scale(
        halved, 2.0**extra / length, var_key, in_scale=_SQUARE_SCALE, out_scale=_SQUARE_SCALE, factor_bits=20
    )
    variance = variance + fixed.constant(epsilon, _SQUARE_SCALE, variance.shape)
    inverse_std = rsqrt_body(variance, rsqrt_key, frac_bits=_SQUARE_SCALE, out_scale=_INVERSE_STD_SCALE)
    return fixed.mul(
        centred, inverse_std[..., None], product_key, shift=_MEAN_SCALE + _INVERSE_STD_SCALE - frac_bits
    )


def layer_norm(
    x: ArithShare, key: jax.Array, axis: int = -1, epsilon: float = 1e-6, scale=None, bias=None
) -> ArithShare:
    """Layer normalisation along ``axis`` (as ``flax.linen.LayerNorm``), with optional scale and bias.

    ``scale`` and ``bias`` broadcast against the normalised values and may be public or shares.
    Domain: row means below ``2^(22 - ceil(log2 L))`` and variances below ``2^22`` in magnitude.
    Error: absolute, a few ``2^-f`` on the normalised values for standard deviations from 1e-1 to 1e2.
    Cost: 34 rounds (plus 2 for a secret scale); each party sends ``162 * (n - 1)`` bytes per element
    for rows of 10, ``67 * (n - 1)`` for rows of 100.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"layer_norm takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    norm_key, scale_key = randomness.split(key, 2)
    axis = _normalize_axis(axis, x.ndim)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    body = functools.partial(layer_norm_body, frac_bits=x.frac_bits, epsilon=float(epsilon))
    out = simulate.run(body, (moved,), (norm_key,))
    y = ArithShare(jnp.moveaxis(out, -1, axis + 1), frac_bits=x.frac_bits)
    if scale is not None:
        from sjax.primitives.arith import mul  # noqa: PLC0415  (sibling protocol module)

        y = mul(y, scale, scale_key)
    if bias is not None:
        y = y + bias
    return y
