"""Helpers shared by the nn modules: shapes and sums of values that may be shares or public arrays."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from sjax.shares import ArithShare

__all__ = ["is_share", "shape_of", "add", "require_share"]


def is_share(x: Any) -> bool:
    return isinstance(x, ArithShare)


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a share's secret or of a public array."""
    return x.shape if is_share(x) else tuple(jnp.shape(x))


def add(a: Any, b: Any) -> Any:
    """``a + b`` where either may be a share (a share when either is one)."""
    if is_share(a) or not is_share(b):
        return a + b
    return b + a


def require_share(op: str, **operands: Any) -> None:
    """Raises a ``TypeError`` unless at least one of the named operands is an :class:`sjax.ArithShare`."""
    if not any(is_share(v) for v in operands.values()):
        names = ", ".join(operands)
        raise TypeError(
            f"{op} needs at least one ArithShare among {names}; all are public, so compute it in plain JAX"
        )
