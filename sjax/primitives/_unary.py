"""The public wrapper shared by elementwise nonlinear protocols."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from sjax import randomness
from sjax import parallel
from sjax.shares import ArithShare


def run_unary(name: str, body: Callable, x: ArithShare, key: jax.Array, **static) -> ArithShare:
    """Checks the arguments of ``name(x, key)`` and maps ``body(x, key, frac_bits=..., **static)``."""
    if not isinstance(x, ArithShare):
        raise TypeError(f"{name} takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    bound = functools.partial(body, frac_bits=x.frac_bits, **static)
    return ArithShare(parallel.run(bound, (x.shares,), (key,)), frac_bits=x.frac_bits)
