"""Losses, each returning a scalar share: :func:`mean_squared_error`, :func:`binary_cross_entropy_with_logits`
and :func:`softmax_cross_entropy`. Targets and labels may be shares or public arrays.

The final average uses :func:`sjax.mean`: a local sum, then one multiplication by ``2**g / count`` held as
an exact integer and one truncation, so the count's rounding costs at most ``2**-(frac_bits + 1)`` relative.

Leakage: none beyond shapes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from sjax import randomness
from sjax.nn._activations import softplus
from sjax.nn._utils import add, is_share, require_share, shape_of
from sjax.primitives.arith import matmul, mean, mul, square
from sjax.primitives.softmax import log_softmax
from sjax.shares import ArithShare

__all__ = ["mean_squared_error", "binary_cross_entropy_with_logits", "softmax_cross_entropy"]


def _check_same_shape(op: str, a: Any, b: Any, names: tuple[str, str]) -> None:
    if shape_of(a) != shape_of(b):
        raise ValueError(
            f"{op}: {names[0]} of shape {shape_of(a)} and {names[1]} of shape {shape_of(b)} differ"
        )


def mean_squared_error(pred: Any, target: Any, *, key: jax.Array) -> ArithShare:
    """``mean((pred - target) ** 2)`` over all elements: a scalar share.

    The mean of ``optax.squared_error(pred, target)`` (which is twice ``optax.l2_loss``). The difference is
    local; each square uses one square pair (:func:`sjax.square`); the mean one truncation.

    Args:
        pred, target: shares or public arrays of the same shape (at least one a share).
        key: a PRNG key, used once.

    Raises:
        TypeError: neither is a share, or ``key`` is not a key.
        ValueError: the shapes differ.

    Domain: ``|pred - target| < 2**(31 - frac_bits)`` (32768 for 16 bits, see :func:`sjax.square`) and a
    mean below ``2**(62 - 2 * frac_bits - ceil(log2(size)))``.
    Error: below ``2 * 2**-frac_bits + mse * 2**-(frac_bits + 1)`` (the squares' truncations average out,
    then the mean's), plus ``|pred - target|`` times the encoding of a public target (``2**-frac_bits``).

    Cost (measured with :func:`sjax.cost`): 3 rounds; each party sends ``16 * (n - 1)`` bytes per element
    plus ``8 * (n - 1)`` for the mean (for ``[64, 10]`` and 2 parties: 10248 bytes).
    """
    key = randomness.check_key(key)
    require_share("mean_squared_error", pred=pred, target=target)
    _check_same_shape("mean_squared_error", pred, target, ("pred", "target"))
    square_key, mean_key = randomness.split(key, 2)
    difference = add(pred, -target if is_share(target) else -jnp.asarray(target))
    return mean(square(difference, square_key), mean_key)


def binary_cross_entropy_with_logits(logits: ArithShare, labels: Any, *, key: jax.Array) -> ArithShare:
    """Mean binary cross-entropy of logits against labels in ``[0, 1]``: a scalar share.

    The mean over all elements of ``optax.sigmoid_binary_cross_entropy(logits, labels)``, computed stably
    as ``softplus(z) - z * y`` with ``softplus(z) = max(z, 0) + log(1 + exp(-|z|))`` (see
    :func:`softplus`): no ``log`` of a small sigmoid. ``z * y`` runs beside the softplus: exact and local
    for public integer or boolean labels, one truncation for public floating labels, one Beaver product
    for secret labels.

    Args:
        logits: share of any shape.
        labels: of the same shape, a share or a public array (0/1, or soft labels in ``[0, 1]``).
        key: a PRNG key, used once.

    Raises:
        TypeError: ``logits`` is not a share, or ``key`` is not a key.
        ValueError: the shapes differ.

    Domain: every representable logit with ``|logits * labels| < 2**(62 - 2 * frac_bits)``.
    Error: absolute, below ``4 * 2**-frac_bits`` (softplus's error, the product's and the mean's
    truncations).

    Cost (measured with :func:`sjax.cost`): 32 rounds; each party sends ``546.125 * (n - 1)`` bytes per
    element (sizes a multiple of 64, see :mod:`sjax.bits`) plus ``8 * (n - 1)`` for the mean with public
    integer labels (for ``[64, 1]`` and 2 parties: 34960 bytes), ``8 * (n - 1)`` more per element for
    public floating labels, ``24 * (n - 1)`` more for secret labels.
    """
    if not isinstance(logits, ArithShare):
        raise TypeError(
            f"binary_cross_entropy_with_logits takes logits as an ArithShare, got {type(logits).__name__}"
        )
    key = randomness.check_key(key)
    _check_same_shape("binary_cross_entropy_with_logits", logits, labels, ("logits", "labels"))
    softplus_key, product_key, mean_key = randomness.split(key, 3)
    # sjax.mul: exact and local for public integer labels, one truncation for public floats, Beaver for shares.
    product = mul(logits, labels, product_key)
    return mean(softplus(logits, softplus_key) - product, mean_key)


def softmax_cross_entropy(logits: ArithShare, labels: Any, *, key: jax.Array) -> ArithShare:
    """Mean over the batch of ``-sum(labels * log_softmax(logits), axis=-1)``: a scalar share.

    The mean over the leading axes of ``optax.softmax_cross_entropy(logits, labels)``. ``labels`` is a
    probability vector per row (one-hot, or smoothed). ``log_softmax`` is :func:`sjax.log_softmax`; each
    row's dot product with its labels is exact and local for public integer or boolean labels, and
    otherwise one (batched) matrix product with a single truncation per row: for public floating labels a
    local product, for secret labels one matrix triple per row.

    Args:
        logits: ``[..., classes]`` share.
        labels: of the same shape, a share or a public array.
        key: a PRNG key, used once.

    Raises:
        TypeError: ``logits`` is not a share, or ``key`` is not a key.
        ValueError: the shapes differ, or ``logits`` is 0-d.

    Domain: as :func:`sjax.log_softmax`. Error: absolute, below ``3 * 2**-frac_bits`` plus
    ``classes * 2**-30`` (log_softmax's, one truncation per row and the mean's), for labels that sum to 1;
    public floating labels that are not on the fixed-point grid (smoothed labels) add their encoding error,
    ``2**-(frac_bits + 1)`` each, times ``|log_softmax|``.

    Cost (measured with :func:`sjax.cost`, ``[B, L]`` logits, ``n`` parties): log_softmax's
    (``9 * ceil(log2 L) + 22`` rounds) plus 1 round for the mean with public integer labels, 1 more for
    public floating labels, 2 more for secret labels; for ``[64, 10]``, one-hot ``int`` labels and 2
    parties: 59 rounds, 150736 bytes per party (``8 * (n - 1)`` more per row for public floating labels,
    ``8 * (n - 1) * (2 L + 1)`` more per row for secret ones); bytes grow as ``n - 1``.
    """
    if not isinstance(logits, ArithShare):
        raise TypeError(f"softmax_cross_entropy takes logits as an ArithShare, got {type(logits).__name__}")
    key = randomness.check_key(key)
    if logits.ndim == 0:
        raise ValueError("softmax_cross_entropy needs logits with a class axis, got a 0-d share")
    _check_same_shape("softmax_cross_entropy", logits, labels, ("logits", "labels"))
    softmax_key, product_key, mean_key = randomness.split(key, 3)
    log_probs = log_softmax(logits, softmax_key, axis=-1)
    classes = logits.shape[-1]
    # Each row's dot product as a batched sjax.matmul, [1, L] @ [L, 1]: exact and local for public integer
    # labels, one truncation per row for public floats, one matrix triple per row for shares.
    rows = log_probs.reshape(-1, 1, classes)
    if is_share(labels):
        targets = labels.reshape(-1, classes, 1)
    else:
        targets = jnp.reshape(jnp.asarray(labels), (-1, classes, 1))
    picked = matmul(rows, targets, product_key).reshape(logits.shape[:-1])
    if picked.ndim == 0:
        return -picked
    return -mean(picked, mean_key)
