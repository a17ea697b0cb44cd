"""Order statistics: max/min/argmax/argmin over an axis, pooling, and sorting by an oblivious network.

* Reductions pair elements up in a tree: ``ceil(log2(L))`` levels for an axis of length ``L``, each one
  comparison (8 rounds) and one selection round, all pairs of a level batched together.
* Sorting uses Batcher's odd–even merge sort: ``k (k + 1) / 2`` layers of disjoint compare-exchanges for
  ``L <= 2^k``, 9 rounds each. The network is public and fixed, so the sort reveals nothing about the
  order. Every comparator sends the smaller value to the lower index; when ``L`` is not a power of two the
  missing elements are treated as +inf and their comparators are dropped, since they never exchange.

Ties resolve to the first index (as ``jnp.argmax``); sorting is not stable for equal keys with different
payloads. Domain as the comparisons: differences below ``2**(63 - frac_bits)`` in magnitude.

Leakage: none.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness
from sjax import parallel
from sjax.primitives.arith import mean
from sjax.primitives.binary import msb_body
from sjax.primitives.compare import select_body
from sjax.shares import ArithShare, _normalize_axis

__all__ = [
    "max",
    "min",
    "argmax",
    "argmin",
    "max_pool2d",
    "avg_pool2d",
    "sort",
    "top_k",
    "sorting_network",
]


# -- tree reductions ---------------------------------------------------------------------------------


def _reduce_body(values: jax.Array, payload: jax.Array | None, key: jax.Array, *, largest: bool):
    """Tree reduction over the last axis of ``values``; ``payload[..., j, :]`` rides along with value j.

    Returns the extreme value (last axis removed) and its payload row.
    """
    length = values.shape[-1]
    levels = int(np.ceil(np.log2(length))) if length > 1 else 0
    keys = randomness.split(key, builtins.max(levels, 1))
    for level in range(levels):
        half = values.shape[-1] // 2
        left, right = values[..., 0 : 2 * half : 2], values[..., 1 : 2 * half : 2]
        sign_key, select_key = randomness.split(keys[level], 2)
        # Keep the left element unless the right one is strictly better: ties go to the first index.
        better = right - left if largest else left - right
        take_right = msb_body(jnp.uint64(0) - better, sign_key)
        if payload is None:
            chosen = select_body(take_right, right, left, select_key)
        else:
            p_left, p_right = payload[..., 0 : 2 * half : 2, :], payload[..., 1 : 2 * half : 2, :]
            # One batched selection for the values and their payload rows.
            bits = jnp.concatenate([take_right[..., None], jnp.broadcast_to(take_right[..., None], p_left.shape)], -1)
            stacked = select_body(
                bits,
                jnp.concatenate([right[..., None], p_right], -1),
                jnp.concatenate([left[..., None], p_left], -1),
                select_key,
            )
            chosen, chosen_payload = stacked[..., 0], stacked[..., 1:]
        if values.shape[-1] % 2:  # the odd element out waits for the next level
            chosen = jnp.concatenate([chosen, values[..., -1:]], -1)
            if payload is not None:
                chosen_payload = jnp.concatenate([chosen_payload, payload[..., -1:, :]], -2)
        values = chosen
        if payload is not None:
            payload = chosen_payload
    return values[..., 0], (None if payload is None else payload[..., 0, :])


def _check_reduction(x, key, op: str, axis) -> tuple[jax.Array, int]:
    if not isinstance(x, ArithShare):
        raise TypeError(f"{op} takes an ArithShare, got {type(x).__name__}")
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"{op} of a share of shape {x.shape} has nothing to reduce")
    return randomness.check_key(key), _normalize_axis(axis, x.ndim)


def _extreme_value(x: ArithShare, key, axis: int, keepdims: bool, largest: bool, op: str) -> ArithShare:
    key, axis = _check_reduction(x, key, op, axis)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    body = functools.partial(lambda v, k, largest: _reduce_body(v, None, k, largest=largest)[0], largest=largest)
    out = ArithShare(parallel.run(body, (moved,), (key,)), frac_bits=x.frac_bits)
    return out.reshape(_keep(x.shape, axis)) if keepdims else out


def _keep(shape: Sequence[int], axis: int) -> tuple[int, ...]:
    return tuple(1 if i == axis else d for i, d in enumerate(shape))


def max(x: ArithShare, key: jax.Array, axis: int = -1, keepdims: bool = False) -> ArithShare:  # noqa: A001
    """Largest element along ``axis``, exactly.

    Cost: ``ceil(log2(L))`` levels of 9 rounds each; each party sends ``54.125 * (n - 1) * (L - 1)``
    bytes per reduced row (for whole blocks of 64 comparisons a level, see :mod:`sjax.bits`).
    """
    return _extreme_value(x, key, axis, keepdims, True, "max")


def min(x: ArithShare, key: jax.Array, axis: int = -1, keepdims: bool = False) -> ArithShare:  # noqa: A001
    """Smallest element along ``axis``, exactly. Cost as :func:`max`."""
    return _extreme_value(x, key, axis, keepdims, False, "min")


def _arg_extreme(x: ArithShare, key, axis: int, one_hot: bool, largest: bool, op: str) -> ArithShare:
    key, axis = _check_reduction(x, key, op, axis)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    length = moved.shape[-1]
    frac_bits = x.frac_bits

    def body(values, key):
        # Each element carries its one-hot position, shared trivially (party 0 holds the public identity).
        identity = jnp.where(
            comm.is_first_party(), jnp.eye(length, dtype=jnp.uint64), jnp.uint64(0)
        )
        payload = jnp.broadcast_to(identity, values.shape + (length,))
        _, position = _reduce_body(values, payload, key, largest=largest)
        return position << np.uint64(frac_bits)

    hot = ArithShare(parallel.run(body, (moved,), (key,)), frac_bits=frac_bits)
    if one_hot:
        return ArithShare(jnp.moveaxis(hot.shares, -1, axis + 1), frac_bits=frac_bits)
    # The index is a public linear function of the one-hot vector: local.
    return (hot * jnp.arange(length)).sum(axis=-1)


def argmax(x: ArithShare, key: jax.Array, axis: int = -1, one_hot: bool = False) -> ArithShare:
    """Position of the largest element along ``axis`` (the first one on ties).

    Returns the index as an ArithShare (``x``'s frac_bits, integer-valued), or with ``one_hot=True`` a 0/1
    vector along ``axis``.

    Cost: ``ceil(log2(L))`` levels of 9 rounds; each party sends ``38.125 * (n - 1)`` bytes per compared
    pair for the comparison (for whole blocks of 64 pairs a level, see :mod:`sjax.bits`) and
    ``16 * (n - 1) * (L + 1)`` per pair for the selection.
    """
    return _arg_extreme(x, key, axis, one_hot, True, "argmax")


def argmin(x: ArithShare, key: jax.Array, axis: int = -1, one_hot: bool = False) -> ArithShare:
    """Position of the smallest element along ``axis`` (the first one on ties). As :func:`argmax`."""
    return _arg_extreme(x, key, axis, one_hot, False, "argmin")


# -- pooling -----------------------------------------------------------------------------------------


def _windows(x: ArithShare, window: Sequence[int], strides: Sequence[int] | None, padding, fill: float):
    """The pooling windows of an NHWC share, stacked on a new last axis: ``[N, OH, OW, C, KH * KW]``."""
    if not isinstance(x, ArithShare):
        raise TypeError(f"pooling takes an ArithShare, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"pooling takes an NHWC share (rank 4), got shape {x.shape}")
    window = tuple(int(w) for w in window)
    strides = window if strides is None else tuple(int(s) for s in strides)
    if len(window) != 2 or len(strides) != 2 or builtins.min(window + strides) < 1:
        raise ValueError(f"window and strides must be two positive ints, got {window} and {strides}")
    if isinstance(padding, str):
        if padding == "VALID":
            pads = ((0, 0), (0, 0))
        elif padding == "SAME":
            pads = tuple(
                _same_padding(size, w, s) for size, w, s in zip(x.shape[1:3], window, strides)
            )
        else:
            raise ValueError(f"padding must be 'SAME', 'VALID' or explicit pairs, got {padding!r}")
    else:
        pads = tuple(tuple(int(p) for p in pair) for pair in padding)
    padded = x.pad(((0, 0), pads[0], pads[1], (0, 0)))
    if fill and any(sum(p) for p in pads):
        mask = np.pad(np.zeros(x.shape[1:3]), pads, constant_values=1.0)[None, :, :, None]
        padded = padded + mask * fill
    h, w = padded.shape[1:3]
    out_h, out_w = (h - window[0]) // strides[0] + 1, (w - window[1]) // strides[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"window {window} does not fit the input of spatial shape {x.shape[1:3]}")
    pieces = [
        padded[:, i : i + strides[0] * (out_h - 1) + 1 : strides[0], j : j + strides[1] * (out_w - 1) + 1 : strides[1], :]
        for i in range(window[0])
        for j in range(window[1])
    ]
    from sjax.shares import stack  # noqa: PLC0415

    return stack(pieces, axis=-1)


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = np.maximum((out - 1) * stride + window - size, 0)
    return int(total // 2), int(total - total // 2)


def max_pool2d(x: ArithShare, key: jax.Array, window, strides=None, padding="VALID") -> ArithShare:
    """Max pooling of an NHWC share, as ``flax.linen.max_pool`` (padding counts as -inf).

    Cost: that of :func:`max` over ``KH * KW`` elements per output: ``ceil(log2(KH * KW))`` levels of
    9 rounds.
    """
    key = randomness.check_key(key)
    # Padding is a value below anything the window can hold, far inside the comparison domain.
    lowest = -(2.0 ** (61 - x.frac_bits)) if isinstance(x, ArithShare) else 0.0
    windows = _windows(x, window, strides, padding, fill=lowest)
    return max(windows, key, axis=-1)


def avg_pool2d(x: ArithShare, key: jax.Array, window, strides=None, padding="VALID") -> ArithShare:
    """Average pooling of an NHWC share, as ``flax.linen.avg_pool`` (padded zeros count in the average).

    Cost: 1 round (the truncation of the mean); ``8 * (n - 1)`` bytes per output element.
    """
    key = randomness.check_key(key)
    windows = _windows(x, window, strides, padding, fill=0.0)
    return mean(windows, key, axis=-1)


# -- sorting -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def sorting_network(length: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Batcher's odd–even merge sort for ``length`` elements: layers of disjoint ``(low, high)`` pairs.

    Built for the next power of two; comparators that touch a position ``>= length`` are dropped (those
    positions hold +inf and never move, because every comparator sends the smaller value down).
    """
    size = 1 << int(np.ceil(np.log2(length))) if length > 1 else 1
    layers = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            layer = []
            for j in range(k % p, size - k, 2 * k):
                for i in range(k if k < size - j - k else size - j - k):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < length:
                        layer.append((i + j, i + j + k))
            if layer:
                layers.append(tuple(layer))
            k //= 2
        p *= 2
    return tuple(layers)


def _sort_body(values: jax.Array, payload: jax.Array | None, key: jax.Array, *, descending: bool):
    layers = sorting_network(values.shape[-1])
    keys = randomness.split(key, builtins.max(len(layers), 1))
    for layer, layer_key in zip(layers, keys):
        low = np.array([a for a, _ in layer])
        high = np.array([b for _, b in layer])
        a, b = values[..., low], values[..., high]
        sign_key, select_key = randomness.split(layer_key, 2)
        # Exchange when the pair is out of order: b < a ascending, b > a descending.
        swap = msb_body(b - a if not descending else a - b, sign_key)
        if payload is None:
            new_low = select_body(swap, b, a, select_key)
        else:
            pa, pb = payload[..., low], payload[..., high]
            both = select_body(jnp.stack([swap, swap]), jnp.stack([b, pb]), jnp.stack([a, pa]), select_key)
            new_low, new_payload_low = both[0], both[1]
            payload = payload.at[..., low].set(new_payload_low).at[..., high].set(pa + pb - new_payload_low)
        # The other element of the pair is what is left of the sum: local.
        values = values.at[..., low].set(new_low).at[..., high].set(a + b - new_low)
    return values, payload


def sort(x: ArithShare, key: jax.Array, axis: int = -1, descending: bool = False) -> ArithShare:
    """Sorts along ``axis`` with a fixed, public sorting network.

    Cost: ``k (k + 1) / 2`` layers for ``L <= 2^k`` elements, 9 rounds each; each party sends
    ``54.125 * (n - 1)`` bytes per comparator (for whole blocks of 64 comparators a layer, see
    :mod:`sjax.bits`).
    """
    key, axis = _check_reduction(x, key, "sort", axis)
    moved = jnp.moveaxis(x.shares, axis + 1, -1)
    body = functools.partial(lambda v, k, d: _sort_body(v, None, k, descending=d)[0], d=descending)
    out = parallel.run(body, (moved,), (key,))
    return ArithShare(jnp.moveaxis(out, -1, axis + 1), frac_bits=x.frac_bits)


def top_k(x: ArithShare, k: int, key: jax.Array) -> tuple[ArithShare, ArithShare]:
    """The ``k`` largest elements along the last axis, in descending order, and their indices.

    Like ``jax.lax.top_k``: returns ``(values, indices)``, the indices as an integer-valued ArithShare.
    Cost: that of :func:`sort` with the index carried along (twice the selection bytes).
    """
    key, _ = _check_reduction(x, key, "top_k", -1)
    length = x.shape[-1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= length:
        raise ValueError(f"k must be an int in [1, {length}], got {k}")
    frac_bits = x.frac_bits

    def body(values, key):
        positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.uint64) << np.uint64(frac_bits), values.shape)
        index = jnp.where(comm.is_first_party(), positions, jnp.uint64(0))
        sorted_values, sorted_index = _sort_body(values, index, key, descending=True)
        return sorted_values[..., :k], sorted_index[..., :k]

    values, indices = parallel.run(body, (x.shares,), (key,))
    return ArithShare(values, frac_bits=frac_bits), ArithShare(indices, frac_bits=frac_bits)
