"""Max pooling on shares as JAX expresses it: ``reduce_window_max`` and its gradient
``select_and_scatter_add``, for any rank, window, stride and padding (no dilation).

Both gather the windows as strided slices of the padded input (local), stacked along a new last axis; the
maximum is a comparison tree over that axis (:func:`sjax.max`), the gradient routes each window's
cotangent to its first maximum through a one-hot :func:`sjax.argmax` and scatters it back by padding
(local again). XLA breaks ties the same way (the first maximum in the window wins).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from sjax import primitives as P
from sjax.shares import ArithShare, per_party


def window_params(params) -> dict:
    """The window parameters of a ``reduce_window_*`` equation, checking that it has no dilation."""
    for name in ("base_dilation", "window_dilation"):
        if any(d != 1 for d in params[name]):
            raise NotImplementedError(f"reduce_window_max with {name} {params[name]} on secrets")
    return {name: params[name] for name in ("window_dimensions", "window_strides", "padding")}


def _map(x: ArithShare, fn: Callable[[jax.Array], jax.Array]) -> ArithShare:
    return ArithShare(per_party(fn, x.shares), frac_bits=x.frac_bits)


def _pad_low(x: ArithShare, padding: Sequence[tuple[int, int]]) -> ArithShare:
    """Pads with a value below every representable input, so that padding never wins a maximum.

    The value, ``-2**(60 - frac_bits)``, keeps every difference the comparisons see inside their domain
    ``2**(63 - frac_bits)`` for inputs below ``2**(61 - frac_bits)`` in magnitude.
    """
    if not any(lo or hi for lo, hi in padding):
        return x
    low = 2.0 ** (60 - x.frac_bits)
    config = [(lo, hi, 0) for lo, hi in padding]
    return _map(x + low, lambda s: lax.pad(s, jnp.uint64(0), config)) - low


def _windows(x: ArithShare, dims, strides) -> tuple[ArithShare, list[tuple[int, ...]], tuple[int, ...]]:
    """The windows of ``x`` stacked along a new last axis, their offsets, and the output shape."""
    out = tuple((n - d) // s + 1 for n, d, s in zip(x.shape, dims, strides))
    offsets = list(itertools.product(*(range(d) for d in dims)))
    slices = []
    for offset in offsets:
        limit = tuple(o + (m - 1) * s + 1 for o, m, s in zip(offset, out, strides))
        slices.append(_map(x, lambda s, o=offset, lim=limit: lax.slice(s, o, lim, strides)))
    stacked = ArithShare(jnp.stack([s.shares for s in slices], axis=-1), frac_bits=x.frac_bits)
    return stacked, offsets, out


def window_max(x: ArithShare, key: jax.Array, *, window_dimensions, window_strides, padding) -> ArithShare:
    """The maximum over each window (``lax.reduce_window`` with ``max``), exactly.

    Cost: ``ceil(log2(window size))`` comparison levels of :func:`sjax.maximum` (9 rounds each).
    """
    stacked, _, _ = _windows(_pad_low(x, padding), window_dimensions, window_strides)
    return P.max(stacked, key, axis=-1)


def max_scatter(ctx, source: ArithShare, operand: ArithShare, *, window_dimensions, window_strides, padding):
    """The gradient of :func:`window_max`: each window's cotangent ``source`` added at its first maximum.

    Cost: a one-hot :func:`sjax.argmax` over each window, then one exact :func:`sjax.where` (2 rounds).
    """
    padded = _pad_low(operand, padding)
    stacked, offsets, out = _windows(padded, window_dimensions, window_strides)
    one_hot = P.argmax(stacked, ctx.next_key(), axis=-1, one_hot=True)
    routed = P.where(one_hot, source.reshape(*source.shape, 1).broadcast_to(one_hot.shape), 0.0, ctx.next_key())
    total = None
    for w, offset in enumerate(offsets):
        config = [
            (o, n - (o + (m - 1) * s + 1), s - 1)
            for o, n, m, s in zip(offset, padded.shape, out, window_strides)
        ]
        part = _map(routed[..., w], lambda s, c=config: lax.pad(s, jnp.uint64(0), c))
        total = part if total is None else total + part
    starts = tuple(lo for lo, _ in padding)
    limits = tuple(n - hi for n, (_, hi) in zip(padded.shape, padding))
    return _map(total, lambda s: lax.slice(s, starts, limits))
