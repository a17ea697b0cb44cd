"""softmax and log_softmax along an axis, and layer normalisation.

softmax subtracts the row maximum (a tree of comparisons), so every exponential has a non-positive
argument and carries a 30-bit mantissa; the row sum lies in ``[1, L]`` and is inverted (or, for
log_softmax, its logarithm taken) at 30 bits. The result's error is the final rounding plus a few
millionth from exp's polynomial, whatever the spread of the logits, and grows with the row length only
by ``L * 2^-30``.

layer_norm centres each row at 24 fractional bits (``1/L`` in two parts of 22 bits, so that a large mean
costs no accuracy), squares the centred values at 20 bits and takes ``1/sqrt`` of the variance at 26.

Leakage: none.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax import parallel
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
    # The sum is positive (at least about 1: the maximum contributes exp(0)), so 1/sum needs no sign.
    inverse = reciprocal_body(total, inverse_key, frac_bits=_SCALE, signed=False)
    return fixed.mul(inverse[..., None], e, product_key, shift=2 * _SCALE - frac_bits)


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
    out = parallel.run(functools.partial(body, frac_bits=x.frac_bits), (moved,), (key,))
    return ArithShare(jnp.moveaxis(out, -1, axis + 1), frac_bits=x.frac_bits)


def softmax(x: ArithShare, key: jax.Array, axis: int = -1) -> ArithShare:
    """``exp(x) / sum(exp(x))`` along ``axis``.

    Domain: any logits whose differences within a row are representable (``|x_i - x_j| < 2^(63 - f)``),
    in rows of any length ``L < 2^31`` (the target: logits in ``[-30, 30]``, ``L`` from 2 to 1000). A
    logit more than ``30 ln 2`` (20.8) below its row's maximum gets exactly 0 (its true value is below
    ``2^-30``). Outside the domain the differences wrap around and the result is wrong (finite, never NaN).
    Error: absolute, below ``2^-f + 1.5e-6 y + (L + 2) 2^-30`` for a result ``y`` (at most 2.4e-5 for 16 bits
    and rows of up to 1000; 1.6e-5 measured): the final rounding; exp's polynomial, relative 5e-7 on each
    exponential and so on their sum, and the reciprocal's, relative 3.2e-7; the exponentials' rounding at
    30 bits.
    Cost: ``9 * ceil(log2 L) + 25`` rounds (34 for L = 2, 61 for L = 10, 88 for L = 100, 115 for
    L = 1000); each party sends ``(236.125 L + 257.875) * (n - 1)`` bytes per row, the dealer ``486 L + 865``
    (for a multiple of 64 rows: comparisons and signs run on whole blocks of 64, see :mod:`sjax.bits`).
    """
    return _along_axis("softmax", softmax_body, x, key, axis)


def log_softmax(x: ArithShare, key: jax.Array, axis: int = -1) -> ArithShare:
    """``x - max - log(sum(exp(x - max)))`` along ``axis``.

    Domain: as :func:`softmax`, and the same behaviour outside it; logits far below the maximum keep
    their accuracy (``x - max`` is exact).
    Error: absolute, below ``2^-f + 2^-24 + 5e-7 + L 2^-30`` (2.0e-5 for 16 bits and rows of up to 1000;
    1.8e-5 measured): the final rounding and the logarithm's polynomial; the relative error of the sum
    (exp's polynomial, the exponentials' rounding at 30 bits).
    Cost: ``9 * ceil(log2 L) + 22`` rounds (31 for L = 2, 58 for L = 10, 85 for L = 100, 112 for
    L = 1000); each party sends ``(212.125 L + 233.875) * (n - 1)`` bytes per row, the dealer ``462 L + 689``
    (for a multiple of 64 rows, see :mod:`sjax.bits`).
    """
    return _along_axis("log_softmax", log_softmax_body, x, key, axis)


_CENTRED_SCALE = 24  # x - mean
_SQUARE_SCALE = 20  # the squares: |x - mean| < 2^11 keeps their products below 2^62
_VARIANCE_SCALE = 26
_INVERSE_STD_SCALE = 26  # with _VARIANCE_SCALE, leaves rsqrt a 21-bit root


def _divide_by_length(
    total: jax.Array, key: jax.Array, *, length: int, in_scale: int, out_scale: int, magnitude_bits: int
) -> jax.Array:
    """``total / length`` for a secret ``total`` whose ring value is below ``2^magnitude_bits``.

    One factor ``2^k / length`` rounded to the ``a = 62 - magnitude_bits`` bits that the product may take
    is off by up to ``2^-a`` relatively, which a row mean of 1000 turns into an error of 2e-4 on rows of
    std 0.1. So the factor is split into a high and a low part of ``a`` bits each, truncated in the same
    round: relative error ``2^-(2a - 1)``, plus one rounding at ``out_scale`` per part.
    """
    extra = max(length - 1, 0).bit_length()  # 2^extra / length lies in [1, 2)
    bits = 62 - magnitude_bits
    # 2^(bits - 1 + extra) / length = high + low / 2^(bits - 1), high and low below 2^bits.
    high, remainder = divmod(1 << (bits - 1 + extra), length)
    low = ((remainder << bits) // length + 1) // 2  # remainder * 2^(bits - 1) / length, rounded
    high_key, low_key = randomness.split(key, 2)
    scale = in_scale + bits - 1 + extra
    out = fixed.rescale(total * np.uint64(high), high_key, from_scale=scale, to_scale=out_scale)
    if low:  # 0 when length is a power of two
        low_part = total * np.uint64(low)
        out = out + fixed.rescale(low_part, low_key, from_scale=scale + bits - 1, to_scale=out_scale)
    return out


def layer_norm_body(x: jax.Array, key: jax.Array, *, frac_bits: int, epsilon: float) -> jax.Array:
    """One party's share of ``(x - mean) / sqrt(var + epsilon)`` over the last axis, at ``frac_bits``."""
    mean_key, narrow_key, square_key, var_key, rsqrt_key, product_key = randomness.split(key, 6)
    length = x.shape[-1]
    extra = max(length - 1, 0).bit_length()
    # |sum| < 2^40 at frac_bits (the documented bound on the mean) leaves 22 bits per factor: relative
    # error 2^-43, so the mean is off by under 2^-19 / L besides its two roundings at 24 bits.
    mean = _divide_by_length(
        x.sum(-1), mean_key, length=length, in_scale=frac_bits, out_scale=_CENTRED_SCALE, magnitude_bits=40
    )
    centred = (x << np.uint64(_CENTRED_SCALE - frac_bits)) - mean[..., None]
    narrow = fixed.rescale(centred, narrow_key, from_scale=_CENTRED_SCALE, to_scale=_SQUARE_SCALE)
    # The squares' sum is below length * 2^(22 + p) at scale p. p = 20 keeps one rounding of 2^-20 per
    # square; long rows lower it so that the division keeps 12 bits per factor (relative 2^-23).
    p = min(_SQUARE_SCALE, 28 - extra)
    squares = fixed.mul(narrow, narrow, square_key, shift=2 * _SQUARE_SCALE - p)
    variance = _divide_by_length(
        squares.sum(-1), var_key, length=length, in_scale=p, out_scale=_VARIANCE_SCALE,
        magnitude_bits=22 + p + extra,
    )
    variance = variance + fixed.constant(epsilon, _VARIANCE_SCALE, variance.shape)
    inverse_std = rsqrt_body(variance, rsqrt_key, frac_bits=_VARIANCE_SCALE, out_scale=_INVERSE_STD_SCALE)
    shift = _CENTRED_SCALE + _INVERSE_STD_SCALE - frac_bits
    return fixed.mul(inverse_std[..., None], centred, product_key, shift=shift)


def layer_norm(
    x: ArithShare, key: jax.Array, axis: int = -1, epsilon: float = 1e-6, scale=None, bias=None
) -> ArithShare:
    """Layer normalisation along ``axis`` (as ``flax.linen.LayerNorm``), with optional scale and bias.

    ``(x - mean) / sqrt(var + epsilon) * scale + bias`` with the mean and the biased variance of each row;
    ``scale`` and ``bias`` broadcast against the normalised values and may be public or shares.

    Domain: rows of ``L`` values with ``|mean| < 2^(40 - f) / L`` (1.6e5 for ``L = 100`` and 16 bits) and
    ``|x - mean| < 2^11`` for every element, for ``f <= 24``. Outside it products wrap around and the
    result is wrong (finite, never NaN).
    Error: on the normalised values ``z`` (absolute, or relative where ``|z| > 1``), 2.0e-5 measured by
    benchmarks/accuracy.py (rows of 10 to 1000, standard deviations 0.1 to 100, means up to 1000 in
    magnitude) and below 4e-5 on rows of 2 to 4096 out to the domain's bounds: the final rounding
    ``2^-f``, plus ``|z|`` times the relative error of ``1/std``, which the stochastic rounding of the
    squares at 20 bits sets (the polynomials' share is below 1e-6). The mean costs nothing: its error,
    under ``2^-19 / L + 2^-23``, moves ``z`` by under 1e-5 for standard deviations from 0.1. Below a
    standard deviation of 0.1 the error grows like ``1/std^2``: 2.4e-4 measured at 0.01 (rows of 100). A
    scale multiplies the error by ``|scale|`` and adds ``2^-f``.
    Cost: 22 rounds (23 with a public scale, 24 with a secret one); each party sends
    ``(56 L + 344) * (n - 1)`` bytes per row (16 fewer when ``L`` is a power of two), the dealer
    ``64 L + 984`` bytes per row (32 fewer).
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"layer_norm takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    norm_key, scale_key = randomness.split(key, 2)
    axis = _normalize_axis(axis, x.ndim)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    body = functools.partial(layer_norm_body, frac_bits=x.frac_bits, epsilon=float(epsilon))
    out = parallel.run(body, (moved,), (norm_key,))
    y = ArithShare(jnp.moveaxis(out, -1, axis + 1), frac_bits=x.frac_bits)
    if scale is not None:
        from sjax.primitives.arith import mul  # noqa: PLC0415  (sibling protocol module)

        y = mul(y, scale, scale_key)
    if bias is not None:
        y = y + bias
    return y
