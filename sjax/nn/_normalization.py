"""Normalisation layers: :func:`batch_norm` (inference, as ``flax.linen.BatchNorm(use_running_average=True)``)
and :func:`layer_norm` (as ``flax.linen.LayerNorm``).

Leakage: none beyond shapes; public statistics are public by the caller's choice.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax.nn._utils import add, is_share, require_share, shape_of
from sjax.primitives.arith import mul
from sjax.primitives.normalize import rsqrt
from sjax.primitives.softmax import layer_norm as _layer_norm
from sjax.shares import ArithShare

__all__ = ["batch_norm", "layer_norm"]


def _public(x: Any) -> jax.Array:
    return jnp.asarray(x, dtype=jnp.float64)


def _product(a: Any, b: Any, key: jax.Array) -> Any:
    """``a * b`` for shares or public arrays: :func:`sjax.mul` when either is a share, else plain."""
    if is_share(a) or is_share(b):
        return mul(a, b, key)
    return _public(a) * _public(b)


def batch_norm(
    x: Any,
    mean: Any,
    var: Any,
    scale: Any = None,
    bias: Any = None,
    *,
    key: jax.Array,
    epsilon: float = 1e-5,
) -> ArithShare:
    """Batch normalisation for inference: ``(x - mean) / sqrt(var + epsilon) * scale + bias``.

    As ``flax.linen.BatchNorm(use_running_average=True)`` with the running ``mean`` and ``var`` from its
    ``batch_stats``; the statistics and ``scale``/``bias`` broadcast against ``x`` (``[C]`` for features on
    the last axis). Any operand may be a share or public (at least one is a share); ``scale`` and ``bias``
    may be ``None`` (flax's ``use_scale=False`` / ``use_bias=False``).

    * Public ``var`` (and public ``scale``): the factor ``a = scale / sqrt(var + epsilon)`` is computed in
      plaintext (``float64``), so the layer is one affine map ``(x - mean) * a + bias``: the subtraction
      and the bias are local, the product one truncation. No rsqrt protocol runs.
    * Public ``var``, secret ``scale``: ``a = scale * (1 / sqrt(var + epsilon))`` is a secret × public
      product (independent of ``x``), then ``(x - mean) * a`` one secret product.
    * Secret ``var``: ``1 / sqrt(var + epsilon)`` by :func:`sjax.rsqrt`, times ``scale``, then one secret
      product with ``x - mean``.

    Args:
        x: the input, a share or public.
        mean, var: running statistics, shares or public.
        scale, bias: optional affine parameters, shares or public.
        key: a PRNG key, used once.
        epsilon: added to the variance (flax's default for BatchNorm, 1e-5).

    Raises:
        TypeError: no operand is a share, or ``key`` is not a key.
        ValueError: a statistic or parameter that does not broadcast against ``x`` (to ``x``'s shape).

    Domain: ``|(x - mean) * a| < 2**(62 - 2 * frac_bits)``; for a secret variance, ``var + epsilon`` in
    rsqrt's domain (positive, representable).
    Error (public statistics and scale): ``|x - mean| * 2**-(frac_bits + 1)`` (the encoding of ``a``) plus
    ``2**-frac_bits`` (the truncation) plus the encodings of ``mean`` and ``bias`` when public
    (``2**-(frac_bits + 1)`` each, the first times ``|a|``). Secret variance: add ``|x - mean|`` times
    rsqrt's error (relative ``2**-23`` of ``a`` plus ``2**-frac_bits``, and the encoding of ``epsilon``).

    Cost (measured with :func:`sjax.cost`, ``[B, C]`` input, ``n`` parties): public statistics and scale,
    1 round, each party sends ``8 * (n - 1) * B * C`` bytes; public variance and secret scale, 3 rounds;
    secret statistics, scale and bias, 19 rounds (rsqrt 15, its product with the scale 2, the product with
    ``x - mean`` 2): for ``[64, 32]`` and 2 parties 43776 bytes per party (33280 with a public variance and
    a secret scale, 16384 with everything public but ``x``); bytes grow as ``n - 1``.
    """
    key = randomness.check_key(key)
    require_share("batch_norm", x=x, mean=mean, var=var, scale=scale, bias=bias)
    x_shape = shape_of(x)
    for name, value in (("mean", mean), ("var", var), ("scale", scale), ("bias", bias)):
        if value is None:
            continue
        try:
            fits = np.broadcast_shapes(x_shape, shape_of(value)) == x_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"batch_norm: {name} of shape {shape_of(value)} does not broadcast against the input of "
                f"shape {x_shape}"
            )
    inverse_key, scale_key, product_key = randomness.split(key, 3)
    if is_share(var):
        inverse = rsqrt(var + float(epsilon), inverse_key)
    else:
        inverse = jax.lax.rsqrt(_public(var) + float(epsilon))
    factor = inverse if scale is None else _product(inverse, scale, scale_key)
    centred = add(x, -mean if is_share(mean) else -_public(mean))
    y = _product(centred, factor, product_key)
    if bias is not None:
        y = add(y, bias)
    return y


def layer_norm(
    x: ArithShare,
    scale: Any = None,
    bias: Any = None,
    *,
    key: jax.Array,
    epsilon: float = 1e-6,
) -> ArithShare:
    """Layer normalisation over the last axis, as ``flax.linen.LayerNorm`` (a thin wrapper of
    :func:`sjax.layer_norm`).

    ``(x - mean) / sqrt(var + epsilon) * scale + bias`` with the mean and the (biased) variance of each row
    of the last axis; ``scale`` and ``bias`` (``[features]``, optional) may be shares or public.

    Args:
        x: the input share, ``[..., features]``.
        scale, bias: optional, shares or public arrays that broadcast against the output.
        key: a PRNG key, used once.
        epsilon: added to the variance (flax's default for LayerNorm, 1e-6).

    Raises:
        TypeError: ``x`` is not a share, or ``key`` is not a key.

    Domain and error: those of :func:`sjax.layer_norm` (its docstring), times ``|scale|``, plus
    ``2**-frac_bits`` for a secret scale.

    Cost (measured with :func:`sjax.cost`, 2 parties, ``[64, 32]``): 22 rounds and 135680 bytes per party
    without a scale or with an integer one; 23 rounds and 152064 bytes with a public floating scale (its
    truncation); 24 rounds and 168704 bytes with a secret one. Bytes grow as ``n - 1``.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"layer_norm takes an ArithShare, got {type(x).__name__}")
    return _layer_norm(x, key, axis=-1, epsilon=float(epsilon), scale=scale, bias=bias)
