"""Comparisons and oblivious selection: lt/le/gt/ge/eq/ne, sign, abs, relu, where, maximum, minimum.

Every comparison reduces to the sign bit of a difference (:func:`sjax.primitives.binary.msb_body`, 8 rounds).
Sign bits are computed on bit-sliced blocks of 64 elements (:mod:`sjax.bits`): the costs per element below
are for sizes that are multiples of 64, and a last, partial block costs as a whole one.
Inside protocols the bit stays an integer 0/1 (scale 1), so selecting with it is one Beaver round with no
truncation. The public functions return the bit as an ArithShare of 0.0/1.0 with the inputs' frac_bits.

Domain: differences must stay inside the ring's signed range, ``|x - y| < 2**(63 - frac_bits)``; in
particular every pair of representable values with ``|x|, |y| < 2**(62 - frac_bits)`` compares correctly.
Ties: ``lt(x, x) = 0``, ``le(x, x) = 1``, ``eq(x, x) = 1``, ``sign(0) = 0``.

Leakage: none.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness
from sjax import parallel
from sjax.primitives.arith import bilinear_body
from sjax.primitives.binary import msb_body
from sjax.primitives.truncation import truncate_body
from sjax.shares import ArithShare

__all__ = [
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "sign",
    "abs",
    "relu",
    "where",
    "maximum",
    "minimum",
    "select_body",
    "lt_body",
]

_ONE = np.uint64(1)


def lt_body(x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    """Additive shares of the integer bit ``[x < y]``. Cost: 8 rounds, ``38.125 * (n - 1)`` bytes per element."""
    return msb_body(x - y, key)


def select_body(bit: jax.Array, a: jax.Array, b: jax.Array, key: jax.Array) -> jax.Array:
    """``a`` where the integer bit is 1, else ``b``: ``b + bit * (a - b)``, one Beaver round, no truncation.

    Cost: 1 round; each party sends ``8 * (n - 1) * (size(bit) + size(a))`` bytes.
    """
    return b + bilinear_body(
        bit, a - b, key, product=jnp.multiply, correlation="beaver_triple",
        count=int(np.prod(jnp.broadcast_shapes(bit.shape, a.shape, b.shape), dtype=np.int64)), frac_bits=0,
    )


def _one_for_first(shape) -> jax.Array:
    return jnp.where(comm.is_first_party(), jnp.ones(shape, jnp.uint64), jnp.zeros(shape, jnp.uint64))


# -- public API --------------------------------------------------------------------------------------


def _operands(x, y, op: str) -> tuple[ArithShare, ArithShare | jax.Array]:
    """Returns the difference's operands as (share, share-or-public), checking their compatibility."""
    x_shared, y_shared = isinstance(x, ArithShare), isinstance(y, ArithShare)
    if not (x_shared or y_shared):
        raise TypeError(f"{op} needs at least one ArithShare, got {type(x).__name__} and {type(y).__name__}")
    if x_shared and y_shared:
        x._check_compatible(y, op)
    return x, y


def _run_bits(body: Callable, diffs: tuple[ArithShare, ...], key, frac_bits: int) -> ArithShare:
    """Runs ``body(*diff_shares, key)`` returning integer bits, and scales them to 0.0/1.0."""

    def scaled(*args):
        return body(*args) << np.uint64(frac_bits)

    shares = parallel.run(scaled, tuple(d.shares for d in diffs), (key,))
    return ArithShare(shares, frac_bits=frac_bits)


def _compare(x, y, key, op: str, body: Callable) -> ArithShare:
    x, y = _operands(x, y, op)
    key = randomness.check_key(key)
    diff = _subtract(x, y)
    return _run_bits(body, (diff,), key, diff.frac_bits)


def _negative(d, key):
    return msb_body(d, key)


def _not_negative(d, key):
    return _one_for_first(d.shape) - msb_body(d, key)


def _positive(d, key):
    return msb_body(jnp.uint64(0) - d, key)


def _not_positive(d, key):
    return _one_for_first(d.shape) - msb_body(jnp.uint64(0) - d, key)


def _both_signs(d, key):
    """Bits ``[d < 0]`` and ``[d > 0]`` from one batched sign extraction (8 rounds for both)."""
    both = msb_body(jnp.stack([d, jnp.uint64(0) - d]), key)
    return both[0], both[1]


def _zero(d, key):
    negative, positive = _both_signs(d, key)
    return _one_for_first(d.shape) - negative - positive


def _nonzero(d, key):
    negative, positive = _both_signs(d, key)
    return negative + positive


_COMPARISON_DOC = """1.0 where ``{expr}``, else 0.0, as an ArithShare with the inputs' frac_bits.

    Either operand may be public (at least one must be a share).

    Domain: ``|x - y| < 2**(63 - frac_bits)``. Exact (no approximation error).
    Cost: 8 rounds; each party sends ``{bytes} * (n - 1)`` bytes per element; the dealer sends ``{dealer}``
    bytes per element ({triples} AND triple words, {randoms} dual random words and bits per 64 elements).
    """


def lt(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "lt", _negative)


def le(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "le", _not_positive)


def gt(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "gt", _positive)


def ge(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "ge", _not_negative)


def eq(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "eq", _zero)


def ne(x, y, key: jax.Array) -> ArithShare:
    return _compare(x, y, key, "ne", _nonzero)


for _fn, _expr, _double in [
    (lt, "x < y", False),
    (le, "x <= y", False),
    (gt, "x > y", False),
    (ge, "x >= y", False),
    (eq, "x == y", True),
    (ne, "x != y", True),
]:
    _k = 2 if _double else 1
    _fn.__doc__ = _COMPARISON_DOC.format(
        expr=_expr, bytes=38.125 * _k, dealer=31 * _k, triples=120 * _k, randoms=2 * 64 * _k
    )


def _unary(x: ArithShare, key, op: str) -> jax.Array:
    if not isinstance(x, ArithShare):
        raise TypeError(f"{op} takes an ArithShare, got {type(x).__name__}")
    return randomness.check_key(key)


def sign(x: ArithShare, key: jax.Array) -> ArithShare:
    """-1.0, 0.0 or 1.0 by the sign of ``x`` (like ``jnp.sign``).

    Cost: 8 rounds; each party sends ``76.25 * (n - 1)`` bytes per element.
    """
    key = _unary(x, key, "sign")

    def body(d, key):
        negative, positive = _both_signs(d, key)
        return positive - negative

    return _run_bits(body, (x,), key, x.frac_bits)


def _sign_select(x: ArithShare, key, op: str, pick: Callable) -> ArithShare:
    key = _unary(x, key, op)

    def body(s, key):
        sign_key, select_key = randomness.split(key, 2)
        return pick(s, msb_body(s, sign_key), select_key)

    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=x.frac_bits)


def abs(x: ArithShare, key: jax.Array) -> ArithShare:  # noqa: A001  (mirrors jnp.abs)
    """``|x|``, exactly. Cost: 9 rounds; each party sends ``54.125 * (n - 1)`` bytes per element."""
    return _sign_select(x, key, "abs", lambda s, negative, k: select_body(negative, jnp.uint64(0) - s, s, k))


def relu(x: ArithShare, key: jax.Array) -> ArithShare:
    """``max(x, 0)``, exactly. Cost: 9 rounds; each party sends ``54.125 * (n - 1)`` bytes per element."""
    return _sign_select(
        x, key, "relu", lambda s, negative, k: select_body(negative, jnp.zeros_like(s), s, k)
    )


def where(condition, a, b, key: jax.Array) -> ArithShare:
    """Oblivious selection: ``a`` where ``condition`` is 1.0, ``b`` where it is 0.0 (with broadcasting).

    ``condition`` is a secret 0.0/1.0 ArithShare (as the comparisons return) or a public boolean array;
    ``a`` and ``b`` are shares or public values (at least one of the three is a share). A secret condition
    must hold exactly 0 or 1.

    Exact over the whole ring (no product range limit).
    Cost (secret condition): 2 rounds (truncating the condition to an integer bit, then one Beaver
    product without truncation); each party sends ``8 * (n - 1) * 3`` bytes per element. (Public
    condition): none.
    """
    key = randomness.check_key(key)
    shares = [s for s in (condition, a, b) if isinstance(s, ArithShare)]
    if not shares:
        raise TypeError("where needs at least one ArithShare among condition, a and b")
    for other in shares[1:]:
        shares[0]._check_compatible(other, "where")
    difference = _subtract(a, b)
    if isinstance(condition, ArithShare):
        # The condition holds c * 2^f exactly, so truncating it by f bits gives the integer bit c without
        # rounding; selecting with an integer bit needs no truncation, so it is exact over the whole ring.
        if not isinstance(difference, ArithShare):
            difference = _trivial_share(condition, difference)
        shape = np.broadcast_shapes(condition.shape, difference.shape)
        frac_bits = condition.frac_bits

        def body(c, d, key):
            bit_key, select_key = randomness.split(key, 2)
            bit = truncate_body(c, bit_key, bits=frac_bits)
            return select_body(bit, d, jnp.zeros_like(d), select_key)

        selected = parallel.run(
            body,
            (condition.broadcast_to(shape).shares, difference.broadcast_to(shape).shares),
            (key,),
        )
        return ArithShare(selected, frac_bits=frac_bits) + b
    condition = jnp.asarray(condition)
    if condition.dtype != jnp.bool_:
        raise TypeError(f"a public condition must be boolean, got dtype {condition.dtype}")
    # A public 0/1 integer multiplies a share locally and exactly.
    return difference * condition.astype(jnp.int64) + b


def _subtract(a, b):
    """``a - b`` for shares or public values (a share when either is one)."""
    if isinstance(a, ArithShare) or not isinstance(b, ArithShare):
        return a - b if isinstance(a, ArithShare) else jnp.asarray(a) - jnp.asarray(b)
    return -(b - a)


def _trivial_share(like: ArithShare, value) -> ArithShare:
    """A public value as a sharing in which party 0 holds it (local, no randomness needed)."""
    return like * 0 + value


def _extreme(x, y, key, op: str, take_x_when_x_greater: bool) -> ArithShare:
    x, y = _operands(x, y, op)
    key = randomness.check_key(key)
    diff = _subtract(x, y)
    y_share = y if isinstance(y, ArithShare) else _trivial_share(diff, y)
    y_share = y_share.broadcast_to(diff.shape)

    def body(d, y_local, key):
        sign_key, select_key = randomness.split(key, 2)
        # maximum(x, y) = y + [x - y > 0] (x - y); minimum(x, y) = y + [x - y < 0] (x - y).
        bit = msb_body(jnp.uint64(0) - d if take_x_when_x_greater else d, sign_key)
        return select_body(bit, y_local + d, y_local, select_key)

    return ArithShare(parallel.run(body, (diff.shares, y_share.shares), (key,)), frac_bits=diff.frac_bits)


def maximum(x, y, key: jax.Array) -> ArithShare:
    """Elementwise maximum, exactly; either operand may be public.

    Cost: 9 rounds; each party sends ``54.125 * (n - 1)`` bytes per element.
    """
    return _extreme(x, y, key, "maximum", take_x_when_x_greater=True)


def minimum(x, y, key: jax.Array) -> ArithShare:
    """Elementwise minimum, exactly; either operand may be public.

    Cost: 9 rounds; each party sends ``54.125 * (n - 1)`` bytes per element.
    """
    return _extreme(x, y, key, "minimum", take_x_when_x_greater=False)

