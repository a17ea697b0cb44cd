"""Pooling with flax's conventions: :func:`max_pool` and :func:`avg_pool` over 1 or 2 spatial axes.

As ``flax.linen.max_pool`` / ``avg_pool``: inputs are ``[N, *spatial, C]`` (or unbatched
``[*spatial, C]``), ``window_shape`` has one int per spatial axis, ``strides`` defaults to 1 on every axis
(not to the window), and ``padding`` is ``"VALID"`` (the default), ``"SAME"`` or one ``(low, high)`` pair per
spatial axis. Max pooling treats padding as -inf; average pooling counts padded zeros in the average unless
``count_include_pad=False``.

Leakage: none beyond shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from sjax import randomness
from sjax.primitives.order import avg_pool2d, max_pool2d
from sjax.primitives.truncation import truncate
from sjax.shares import ArithShare

__all__ = ["max_pool", "avg_pool"]


def _ints(values: Any, what: str, op: str) -> tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"{op}: {what} must be a sequence of ints, got {values!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{op}: {what} must be positive ints, got {values}")
    return tuple(int(v) for v in values)


def _as_2d(x: ArithShare, window_shape, strides, padding, op: str):
    """Lifts 1-D pooling and unbatched inputs to NHWC with 2-D windows.

    Returns the lifted share, window, strides, explicit padding pairs, and a function that undoes the lift.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"{op} takes an ArithShare, got {type(x).__name__}")
    window = _ints(window_shape, "window_shape", op)
    dims = len(window)
    if dims not in (1, 2):
        raise ValueError(f"{op}: pooling over {dims} spatial axes is not supported (1 or 2), window {window}")
    strides = (1,) * dims if strides is None else _ints(strides, "strides", op)
    if len(strides) != dims:
        raise ValueError(f"{op}: strides {strides} must have one entry per window axis ({dims})")
    if x.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"{op}: a {dims}-D window needs an input of rank {dims + 2} ([N, *spatial, C]) or {dims + 1} "
            f"(unbatched), got shape {x.shape}"
        )
    unbatched = x.ndim == dims + 1
    if unbatched:
        x = x.reshape((1,) + x.shape)
    spatial = x.shape[1:-1]
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"{op}: padding must be 'SAME', 'VALID' or (low, high) pairs, got {padding!r}")
        pads = tuple(tuple(p) for p in jax.lax.padtype_to_pads(spatial, window, strides, padding))
    else:
        try:
            pads = tuple(tuple(int(p) for p in pair) for pair in padding)
        except TypeError:
            raise TypeError(f"{op}: padding must be a string or (low, high) pairs, got {padding!r}") from None
        if len(pads) != dims or any(len(p) != 2 or min(p) < 0 for p in pads):
            raise ValueError(
                f"{op}: padding needs {dims} (low, high) pairs of non-negative ints, got {padding}"
            )
    if dims == 1:
        n, length, c = x.shape
        x = x.reshape((n, length, 1, c))
        window, strides, pads = window + (1,), strides + (1,), pads + ((0, 0),)

    def restore(y: ArithShare) -> ArithShare:
        if dims == 1:
            y = y.reshape((y.shape[0], y.shape[1], y.shape[3]))
        return y.reshape(y.shape[1:]) if unbatched else y

    return x, window, strides, pads, restore


def max_pool(
    x: ArithShare,
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: str | Sequence[tuple[int, int]] = "VALID",
    *,
    key: jax.Array,
) -> ArithShare:
    """Max pooling, exactly, as ``flax.linen.max_pool`` (see the module docstring for the conventions).

    Each window's maximum is a tree of comparisons (:func:`sjax.max_pool2d`).

    Args:
        x: ``[N, *spatial, C]`` or ``[*spatial, C]`` share, with 1 or 2 spatial axes.
        window_shape: one positive int per spatial axis.
        strides: one positive int per spatial axis; default 1.
        padding: ``"VALID"``, ``"SAME"`` or one ``(low, high)`` pair per spatial axis.
        key: a PRNG key, used once.

    Raises:
        TypeError: ``x`` is not a share or ``key`` not a key.
        ValueError: window, strides or padding that do not fit the input.

    Domain: values below ``2**(61 - frac_bits)`` in magnitude. Error: none (exact).
    Cost (measured with :func:`sjax.cost`): ``ceil(log2(KH * KW))`` levels of 9 rounds, 18 rounds for a
    2×2 window; each party sends ``54.125 * (n - 1) * (KH * KW - 1)`` bytes per output element (for a
    multiple of 64 output elements, see :mod:`sjax.bits`; 2×2 windows on ``[2, 8, 8, 4]`` with stride 2,
    2 parties: 20784 bytes).
    """
    key = randomness.check_key(key)
    x, window, strides, pads, restore = _as_2d(x, window_shape, strides, padding, "max_pool")
    return restore(max_pool2d(x, key, window, strides, pads))


def _window_sum(x: ArithShare, window, strides, pads) -> ArithShare:
    """The sum over every pooling window of an NHWC share: local (slices of the zero-padded input)."""
    padded = x.pad(((0, 0), pads[0], pads[1], (0, 0)))
    h, w = padded.shape[1:3]
    out_h, out_w = (h - window[0]) // strides[0] + 1, (w - window[1]) // strides[1] + 1
    total = None
    for i in range(window[0]):
        rows = slice(i, i + strides[0] * (out_h - 1) + 1, strides[0])
        for j in range(window[1]):
            piece = padded[:, rows, j : j + strides[1] * (out_w - 1) + 1 : strides[1], :]
            total = piece if total is None else total + piece
    return total


def _valid_counts(spatial, window, strides, pads) -> np.ndarray:
    """Per output position, how many elements of its window lie inside the (unpadded) input."""
    per_axis = []
    for size, k, s, (low, high) in zip(spatial, window, strides, pads):
        starts = np.arange((size + low + high - k) // s + 1) * s - low
        per_axis.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
    return np.outer(per_axis[0], per_axis[1]).astype(np.int64)


def avg_pool(
    x: ArithShare,
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: str | Sequence[tuple[int, int]] = "VALID",
    count_include_pad: bool = True,
    *,
    key: jax.Array,
) -> ArithShare:
    """Average pooling, as ``flax.linen.avg_pool`` (see the module docstring for the conventions).

    Each window's sum is local; dividing it by the window's count is one truncation. The public factor
    ``2**g / count`` is applied as an exact integer with ``g = frac_bits + ceil(log2(count))`` bits, so its
    relative error is at most ``2**-(frac_bits + 1)``. With ``count_include_pad=False`` the count is, per
    output position, the number of window elements inside the input (public).

    Args:
        x: ``[N, *spatial, C]`` or ``[*spatial, C]`` share, with 1 or 2 spatial axes.
        window_shape: one positive int per spatial axis.
        strides: one positive int per spatial axis; default 1.
        padding: ``"VALID"``, ``"SAME"`` or one ``(low, high)`` pair per spatial axis.
        count_include_pad: whether padded zeros count in the average (flax's default, True).
        key: a PRNG key, used once.

    Raises:
        TypeError: ``x`` is not a share or ``key`` not a key.
        ValueError: window, strides or padding that do not fit the input.

    Domain: averages below ``2**(62 - 2 * frac_bits - ceil(log2(count)))`` in magnitude (about 2.7e8 for a
    2×2 window and 16 bits).
    Error: ``|avg| * 2**-(frac_bits + 1) + 2**-frac_bits``.
    Cost (measured with :func:`sjax.cost`): 1 round; each party sends ``8 * (n - 1)`` bytes per output
    element (2×2 windows on ``[2, 8, 8, 4]`` with stride 2, 2 parties: 1024 bytes).
    """
    key = randomness.check_key(key)
    x, window, strides, pads, restore = _as_2d(x, window_shape, strides, padding, "avg_pool")
    if count_include_pad or not any(sum(p) for p in pads):
        return restore(avg_pool2d(x, key, window, strides, pads))
    counts = _valid_counts(x.shape[1:3], window, strides, pads)[None, :, :, None]
    bits = x.frac_bits + int(np.ceil(np.log2(int(counts.max()))))
    factors = np.rint(2.0**bits / counts).astype(np.int64)
    total = _window_sum(x, window, strides, pads)
    return restore(truncate(total * factors, key, bits=bits))
