"""Linear layers in flax's layout: :func:`dense` (kernel ``[in, out]``) and :func:`conv` (NHWC input,
HWIO kernel). Either the input or the weights may be public; the bias, when given, may be public or
secret and is added locally.

Leakage: none beyond shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax.nn._utils import add, is_share, require_share, shape_of
from sjax.primitives.arith import conv2d, matmul

__all__ = ["dense", "conv"]


def _add_bias(y: Any, bias: Any, out_features: int, op: str) -> Any:
    if bias is None:
        return y
    if shape_of(bias) != (out_features,):
        raise ValueError(f"{op}: bias must have shape ({out_features},), got {shape_of(bias)}")
    return add(y, bias)


def dense(x: Any, kernel: Any, bias: Any = None, *, key: jax.Array) -> Any:
    """A fully connected layer, ``x @ kernel + bias``, as ``flax.linen.Dense``.

    The product is :func:`sjax.matmul`: with two secrets one matrix triple, so the parties open ``x`` and
    the kernel once each, whatever the number of outputs; with a public floating operand it is local and
    then truncated; with a public integer operand it is exact and needs no communication.

    Args:
        x: ``[..., in]`` input, an :class:`sjax.ArithShare` or a public array.
        kernel: ``[in, out]`` weights (flax's layout), a share or a public array (at least one of ``x`` and
            ``kernel`` is a share).
        bias: ``[out]``, optional, a share or a public array; added locally.
        key: a PRNG key, used once.

    Returns:
        ``[..., out]`` :class:`sjax.ArithShare`.

    Raises:
        TypeError: neither ``x`` nor ``kernel`` is a share, or ``key`` is not a key.
        ValueError: ``kernel`` is not 2-D, its first axis does not match ``x``'s last, or ``bias`` is not
            ``[out]``.

    Domain: every output's sum of products below ``2**(62 - 2 * frac_bits)`` (about 1.07e9 for 16 bits).
    Error: below ``2**-frac_bits`` per output for two secrets (one truncation of the exact sum of
    products); with a public floating kernel add its encoding error, ``|x| @ 2**-(frac_bits + 1)``.

    Cost (measured with :func:`sjax.cost`, ``x: [B, in]``, ``kernel: [in, out]``, ``n`` parties): secret ×
    secret, 2 rounds, each party sends ``8 * (n - 1) * (B*in + in*out + B*out)`` bytes (for ``[64, 64] @
    [64, 32]`` and 2 parties: 65536 bytes); the dealer sends ``24 * B * out`` bytes. Secret × public
    float: 1 round, ``8 * (n - 1) * B * out`` bytes. Secret × public integer: 0 rounds.
    """
    key = randomness.check_key(key)
    kernel_shape, x_shape = shape_of(kernel), shape_of(x)
    if len(kernel_shape) != 2:
        raise ValueError(f"dense: kernel must be [in, out] (flax's layout), got shape {kernel_shape}")
    if len(x_shape) < 1 or x_shape[-1] != kernel_shape[0]:
        raise ValueError(
            f"dense: input of shape {x_shape} does not fit a kernel of shape {kernel_shape} "
            f"(the input's last axis must be {kernel_shape[0]})"
        )
    require_share("dense", x=x, kernel=kernel)
    return _add_bias(matmul(x, kernel, key), bias, kernel_shape[1], "dense")


def _conv_padding(padding: Any) -> Any:
    """flax's padding forms: a string, one int, one int per spatial axis, or ``(low, high)`` pairs."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return ((int(padding), int(padding)),) * 2
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(f"conv: padding must be a string, an int or pairs, got {padding!r}") from None
    if all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in items):
        return tuple((int(p), int(p)) for p in items)
    return items


def conv(
    x: Any,
    kernel: Any,
    bias: Any = None,
    *,
    key: jax.Array,
    strides: int | Sequence[int] = (1, 1),
    padding: str | int | Sequence[Any] = "SAME",
) -> Any:
    """A 2-D convolution, as ``flax.linen.Conv`` with ``features = kernel.shape[-1]``.

    The convolution is :func:`sjax.conv2d`: with two secrets one convolution triple (the parties open the
    input and the kernel once each), with a public floating operand local and then truncated.

    Args:
        x: ``[N, H, W, C_in]`` input (or unbatched ``[H, W, C_in]``), a share or a public array.
        kernel: ``[KH, KW, C_in, C_out]`` weights (HWIO, flax's layout), a share or a public array (at
            least one of ``x`` and ``kernel`` is a share).
        bias: ``[C_out]``, optional, a share or a public array; added locally.
        key: a PRNG key, used once.
        strides: an int or two ints.
        padding: ``"SAME"``, ``"VALID"``, an int, one int per spatial axis, or ``((top, bottom), (left,
            right))``, as flax.

    Returns:
        ``[N, H', W', C_out]`` :class:`sjax.ArithShare` (unbatched if ``x`` was).

    Raises:
        TypeError: neither ``x`` nor ``kernel`` is a share, or ``key`` is not a key.
        ValueError: shapes that do not fit, bad strides or padding (``"CIRCULAR"`` and ``"CAUSAL"`` are not
            supported), or a ``bias`` that is not ``[C_out]``.

    Domain and error as :func:`dense`, with each window's sum of products.

    Cost (measured with :func:`sjax.cost`): secret × secret, 2 rounds, each party sends
    ``8 * (n - 1) * (size(x) + size(kernel) + size(out))`` bytes (``[8, 8, 8, 1]`` input, ``[3, 3, 1, 4]``
    kernel, SAME, 2 parties: 20768 bytes); the dealer sends ``24 * size(out)`` bytes. Secret × public
    float: 1 round, ``8 * (n - 1) * size(out)`` bytes.
    """
    key = randomness.check_key(key)
    require_share("conv", x=x, kernel=kernel)
    x_shape, kernel_shape = shape_of(x), shape_of(kernel)
    if len(kernel_shape) != 4:
        raise ValueError(f"conv: kernel must be [KH, KW, C_in, C_out] (HWIO), got shape {kernel_shape}")
    unbatched = len(x_shape) == 3
    if unbatched:
        x = x.reshape((1,) + x_shape) if is_share(x) else jnp.reshape(jnp.asarray(x), (1,) + x_shape)
    y = conv2d(x, kernel, key, strides=strides, padding=_conv_padding(padding))
    if unbatched:
        y = y.reshape(y.shape[1:])
    return _add_bias(y, bias, kernel_shape[3], "conv")
