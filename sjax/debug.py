"""Debugging aids for simulation: :func:`check_overflow` finds the first operation that leaves the range.

Fixed-point values live in ``|x| < 2**(63 - frac_bits)``; a value beyond wraps around modulo 2^64 without
any error, and every result computed from it is wrong. Products are truncated exactly only while the
product is below ``2**(62 - 2 * frac_bits)`` (about 1.07e9 at 16 bits). :func:`check_overflow` evaluates
a function through :func:`sjax.secure` and, after every equation on secrets, reconstructs its secret
inputs, computes the equation in plaintext, and checks the magnitude of the result against those bounds.
It names the first equation that crosses one, with the line of the user's code that produced it.

For simulation only: it reconstructs every secret intermediate in this process, which is exactly what MPC
must never do with real data. Use it on test data to find a scaling problem, never in production.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sjax import ring
from sjax.shares import ArithShare
from sjax.transform import _interpreter

__all__ = ["check_overflow", "OverflowDetected", "Finding"]

# Primitives whose result on secrets is a product of two fixed-point values, truncated afterwards.
PRODUCTS = frozenset(
    {"mul", "dot_general", "conv_general_dilated", "integer_pow", "square", "pow", "div", "reduce_prod"}
)
_NOT_CHECKED = frozenset(_interpreter._CALLS) | frozenset(_interpreter._CONTROL)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One equation whose value crossed a bound.

    Attributes:
        primitive: the JAX primitive (``mul``, ``dot_general``, ``exp`` ...).
        source: the line of the user's code that produced it (``file:line (function)``).
        magnitude: the largest ``|value|`` of its plaintext result (for ``kind="error"``: the largest
            difference between the secure result and the plaintext one).
        bound: the bound it crossed.
        kind: ``"range"`` (the value left ``|x| < 2**(63 - frac_bits)``, or the configured bound: it wraps
            around), ``"product"`` (a product beyond ``2**(62 - 2 * frac_bits)``: its truncation is no longer
            exact) or ``"error"`` (the secure result differs from plaintext by more than ``tolerance``).
    """

    primitive: str
    source: str
    magnitude: float
    bound: float
    kind: str

    def __str__(self) -> str:
        what = {
            "range": "left the representable range",
            "product": "is a product too large for exact truncation",
            "error": "differs from its plaintext value",
        }[self.kind]
        return (
            f"the result of '{self.primitive}' at {self.source} {what}: "
            f"magnitude {self.magnitude:.6g} >= bound {self.bound:.6g}"
        )


class OverflowDetected(ValueError):
    """Raised by a function wrapped in :func:`check_overflow`; ``.finding`` is the first :class:`Finding`."""

    def __init__(self, finding: Finding):
        super().__init__(f"sjax.debug.check_overflow: {finding}")
        self.finding = finding


def _plain(value: Any, aval) -> Any:
    """The plaintext of an equation input, in the dtype the traced function saw."""
    if isinstance(value, ArithShare):
        opened = ring.decode(jnp.sum(value.shares, axis=0, dtype=ring.RING_DTYPE), value.frac_bits)
        return opened.astype(aval.dtype) if hasattr(aval, "dtype") else opened
    return value


def _magnitude(values: list[Any]) -> jax.Array:
    """Largest ``|x|`` over arrays (``inf`` for a non-finite value), as a float64 scalar."""
    mags = [jnp.max(jnp.abs(jnp.asarray(v, jnp.float64)), initial=0.0) for v in values]
    total = functools.reduce(jnp.maximum, mags)
    return jnp.where(jnp.isnan(total), jnp.inf, total)


class _Observer:
    def __init__(self, bound: float | None, products: bool, tolerance: float | None):
        self.bound = bound
        self.products = products
        self.tolerance = tolerance
        self.findings: list[Finding] = []

    def flush(self) -> None:
        """Raises the first finding reported so far (traced equations report through callbacks)."""
        jax.effects_barrier()
        if self.findings:
            raise OverflowDetected(self.findings[0])

    def __call__(self, eqn, inputs: list[Any], outputs: list[Any]) -> None:
        name = eqn.primitive.name
        secret_out = [o for o in outputs if isinstance(o, ArithShare)]
        if name in _NOT_CHECKED or not secret_out:
            return
        frac_bits = secret_out[0].frac_bits
        plain = [_plain(x, getattr(v, "aval", None)) for x, v in zip(inputs, eqn.invars)]
        reference = eqn.primitive.bind(*plain, **eqn.primitive.get_bind_params(eqn.params))
        if not eqn.primitive.multiple_results:
            reference = [reference]
        reference = [r for r, o in zip(reference, outputs) if isinstance(o, ArithShare)]
        checks = [("range", _magnitude(reference), self.bound or ring.max_abs(frac_bits))]
        if self.products and name in PRODUCTS:
            checks.append(("product", checks[0][1], float(2 ** (62 - 2 * frac_bits))))
        if self.tolerance is not None:
            errors = [
                jnp.abs(ring.decode(jnp.sum(o.shares, axis=0, dtype=ring.RING_DTYPE), o.frac_bits) - r)
                / jnp.maximum(1.0, jnp.abs(jnp.asarray(r, jnp.float64)))
                for o, r in zip(secret_out, reference)
            ]
            checks.append(("error", _magnitude(errors), self.tolerance))
        source = _interpreter._source_line(eqn)
        for kind, magnitude, bound in checks:
            self._check(name, source, kind, magnitude, float(bound))

    def _check(self, name: str, source: str, kind: str, magnitude: jax.Array, bound: float) -> None:
        def record(magnitude):
            magnitude = float(magnitude)
            if magnitude >= bound:
                self.findings.append(Finding(name, source, magnitude, bound, kind))

        if isinstance(magnitude, jax.core.Tracer):  # in a loop body or a branch: report when it runs
            jax.debug.callback(record, magnitude)
            return
        self.flush()  # anything a loop before this equation reported comes first
        record(np.asarray(magnitude))
        self.flush()


def check_overflow(
    f: Callable,
    *,
    bound: float | None = None,
    products: bool = True,
    tolerance: float | None = None,
    secret_dtype=jnp.float32,
) -> Callable:
    """``sjax.secure(f)`` that stops at the first operation whose value crosses a bound (simulation only).

    ``check_overflow(f)(*args, key=key)`` evaluates ``f`` as :func:`sjax.secure` does (same arguments, same
    key, the same results bit for bit when nothing is found). After every equation with a secret result it
    reconstructs the equation's secret inputs, evaluates it in plaintext (in the dtype ``f`` sees) and
    raises :class:`OverflowDetected` at the first one where:

    * the result's magnitude reaches ``bound`` (default ``2**(63 - frac_bits)``, the representable range,
      beyond which values wrap around; pass a smaller bound to find values that grow too large early);
    * (``products=True``) a product (``mul``, ``dot_general``, ``conv_general_dilated``, ``integer_pow``,
      ``pow``, ``div``, ...) reaches ``2**(62 - 2 * frac_bits)``, where its truncation stops being exact;
    * (``tolerance`` given) the secure result differs from the plaintext result of the same inputs by more
      than ``tolerance * max(1, |plaintext|)``: this catches a value that wrapped around inside a protocol
      (an ``exp`` whose intermediate left the range) and approximations used outside their domain.

    The message and ``error.finding`` name the primitive, the line of ``f``'s code (``file:line``), the
    magnitude and the bound. Equations inside loops and branches are checked too (through
    ``jax.debug.callback``); equations on public values only are not checked (they are plain JAX). Call it
    eagerly, not under ``jax.jit`` (a traced argument raises a ``TypeError``): it reads values as they come.

    Leakage: it reconstructs every secret intermediate in this process. Simulation and test data only.
    """
    secured = _interpreter.secure(f, secret_dtype=secret_dtype)
    if bound is not None and not bound > 0:
        raise ValueError(f"check_overflow: bound must be positive, got {bound}")
    if tolerance is not None and not tolerance > 0:
        raise ValueError(f"check_overflow: tolerance must be positive, got {tolerance}")

    @functools.wraps(f)
    def checked(*args, key: jax.Array):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(args)):
            raise TypeError("check_overflow runs eagerly and reads every value: do not call it under jax.jit")
        observer = _Observer(bound, products, tolerance)
        previous, _interpreter._observer = _interpreter._observer, observer
        try:
            out = secured(*args, key=key)
        finally:
            _interpreter._observer = previous
        jax.block_until_ready(out)
        observer.flush()
        return out

    return checked
