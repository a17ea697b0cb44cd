"""Dropout with a public mask: :func:`dropout`.

Leakage: **the mask pattern is public.** It is drawn with ``jax.random.bernoulli`` from the key, which
every party holds, so all parties know which elements were dropped; the values of the kept elements stay
secret. Training with a public mask reveals which units were active, nothing about their values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness
from sjax.primitives.arith import mul
from sjax.shares import ArithShare

__all__ = ["dropout"]


def dropout(
    x: ArithShare, rate: float, *, key: jax.Array | None = None, deterministic: bool = False
) -> ArithShare:
    """Zeroes each element with probability ``rate`` and scales the rest by ``1 / (1 - rate)``, as
    ``flax.linen.Dropout``.

    The mask is public (see the module docstring): ``keep = jax.random.bernoulli(k, 1 - rate, x.shape)``
    with ``k`` derived from ``key``. When ``1 / (1 - rate)`` is an integer (rate 0.5, 0.75 ...) the scaling
    is exact and local; otherwise it is a multiplication by the public ``keep / (1 - rate)`` and one
    truncation.

    Args:
        x: the input share.
        rate: the drop probability, a Python number in ``[0, 1]`` (static: it decides the program).
        key: a PRNG key, used once; may be ``None`` when ``deterministic`` or ``rate == 0``.
        deterministic: if true, return ``x`` unchanged (inference), as flax.

    Returns:
        A share of ``x``'s shape; all zeros when ``rate == 1``.

    Raises:
        TypeError: ``x`` is not a share, ``rate`` is not a static number, or ``key`` is missing or not a key.
        ValueError: ``rate`` outside ``[0, 1]``.

    Error: none for an integer ``1 / (1 - rate)``; otherwise ``|x| * 2**-(frac_bits + 1)`` (the encoding of
    the factor) plus ``2**-frac_bits``.
    Cost (measured with :func:`sjax.cost`): 0 rounds for an integer ``1 / (1 - rate)`` or when
    deterministic; otherwise 1 round, each party sends ``8 * (n - 1)`` bytes per element.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"dropout takes an ArithShare, got {type(x).__name__}")
    if isinstance(rate, bool):
        raise TypeError("dropout: rate must be a number in [0, 1], got a bool")
    try:
        rate = float(rate)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise TypeError(
            "dropout: rate must be a static Python number (it decides the program), "
            f"got {type(rate).__name__}"
        ) from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1], got {rate}")
    if deterministic or rate == 0.0:
        return x
    if key is None:
        raise TypeError("dropout needs a key unless deterministic=True: dropout(x, rate, key=key)")
    key = randomness.check_key(key)
    if rate == 1.0:
        return x * 0
    mask_key, scale_key = randomness.split(key, 2)
    keep = jax.random.bernoulli(mask_key, 1.0 - rate, x.shape)
    factor = 1.0 / (1.0 - rate)
    if abs(factor - round(factor)) < 1e-9:  # 1 / (1 - 0.8) is 5.000000000000001 in floating point
        return x * (keep.astype(jnp.int64) * np.int64(round(factor)))
    return mul(x, jnp.where(keep, factor, 0.0), scale_key)
