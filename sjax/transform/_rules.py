"""How each JAX primitive runs when at least one of its operands is secret.

A rule takes the interpreter's :class:`Context`, the equation (for its parameters and output types) and the
operands (:class:`ArithShare` or public arrays), and returns the output (a list for primitives with several
results). Every secret is an ArithShare at the context's ``frac_bits``, whatever its JAX dtype: a boolean is
0.0 or 1.0, an integer its value.

Three families:
- structural and additive primitives (reshape, slicing, padding, sums, add): local, the same primitive
  applied to every party's ``uint64`` share after public operands are lifted to trivial sharings;
- products (mul, dot_general, conv_general_dilated): Beaver triples for two secrets, local work and a
  truncation for a secret and a public operand (:func:`sjax.primitives.arith.bilinear`);
- everything else maps to a protocol (comparisons, max, exp, log, rsqrt, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sjax import primitives as P
from sjax import ring
from sjax.primitives import arith
from sjax.shares import ArithShare, per_party
from sjax.transform import _windows
from sjax.transform._context import Context, is_secret

Rule = Callable[..., object]
RULES: dict[str, Rule] = {}


def _register(*names: str):
    def decorate(rule: Rule) -> Rule:
        for name in names:
            RULES[name] = rule
        return rule

    return decorate


def _out_shape(eqn, index: int = 0) -> tuple[int, ...]:
    return tuple(eqn.outvars[index].aval.shape)


# -- structural and additive: the same primitive on every party's share --------------------------------


def _on_shares(ctx: Context, eqn, args: Sequence, data: Sequence[int], broadcast: bool = False):
    """Binds ``eqn``'s primitive to every party's shares; operands at ``data`` positions are secret-shared
    (public ones lifted), the rest (indices, predicates) are passed as they are."""
    shape = _out_shape(eqn) if broadcast else None
    operands, axes = [], []
    for i, arg in enumerate(args):
        if i in data:
            operands.append(ctx.lift(arg, shape).shares)
            axes.append(0)
        else:
            operands.append(arg)
            axes.append(None)
    params = eqn.primitive.get_bind_params(eqn.params)
    out = per_party(lambda *ops: eqn.primitive.bind(*ops, **params), *operands, in_axes=axes)
    if eqn.primitive.multiple_results:
        return [ArithShare(o, frac_bits=ctx.frac_bits) for o in out]
    return ArithShare(out, frac_bits=ctx.frac_bits)


def _all_data(ctx, eqn, *args):
    return _on_shares(ctx, eqn, args, data=range(len(args)))


def _elementwise_data(ctx, eqn, *args):
    return _on_shares(ctx, eqn, args, data=range(len(args)), broadcast=True)


for _name in (
    "broadcast_in_dim", "reshape", "transpose", "squeeze", "slice", "concatenate", "pad",
    "rev", "reduce_sum", "cumsum", "reduce_window_sum", "split", "copy", "copy_p",
):  # fmt: skip
    RULES[_name] = _all_data
for _name in ("add", "sub", "neg", "add_any"):
    RULES[_name] = _elementwise_data


@_register("dynamic_slice", "gather")
def _indexed(ctx, eqn, operand, *indices):
    return _on_shares(ctx, eqn, (operand, *indices), data=(0,))


@_register("dynamic_update_slice")
def _dynamic_update_slice(ctx, eqn, operand, update, *indices):
    return _on_shares(ctx, eqn, (operand, update, *indices), data=(0, 1))


@_register("scatter-add", "scatter_add")
def _scatter_add(ctx, eqn, operand, indices, updates):
    # The equation's own update_jaxpr is typed for floats; lax.scatter_add builds one for the ring.
    p = eqn.params
    scatter = functools.partial(
        lax.scatter_add,
        dimension_numbers=p["dimension_numbers"],
        indices_are_sorted=p["indices_are_sorted"],
        unique_indices=p["unique_indices"],
        mode=p["mode"],
    )
    operand, updates = ctx.lift(operand), ctx.lift(updates)
    out = per_party(lambda o, u: scatter(o, indices, u), operand.shares, updates.shares)
    return ArithShare(out, frac_bits=ctx.frac_bits)


@_register("select_n")
def _select_n(ctx, eqn, which, *cases):
    if not is_secret(which):
        return _on_shares(ctx, eqn, (which, *cases), data=range(1, len(cases) + 1), broadcast=True)
    if len(cases) != 2:
        raise NotImplementedError("select_n with a secret selector supports two cases (a boolean predicate)")
    shape = _out_shape(eqn)
    # select_n picks cases[1] where the predicate holds.
    return P.where(which.broadcast_to(shape), cases[1], cases[0], ctx.next_key())


@_register("convert_element_type")
def _convert(ctx, eqn, x):
    new = np.dtype(eqn.params["new_dtype"])
    old = np.dtype(eqn.invars[0].aval.dtype)
    if new == np.bool_ and old != np.bool_:
        return P.ne(x, 0, ctx.next_key())
    if np.issubdtype(new, np.integer) and np.issubdtype(old, np.floating):
        raise NotImplementedError(
            f"casting a secret from {old} to {new} would round it to an integer, which sjax.secure does not do"
        )
    return x  # bool -> number, int -> float, float -> float: the fixed-point value is already right


@_register("stop_gradient", "reduce_precision", "optimization_barrier")
def _identity(ctx, eqn, *args):
    return list(args) if eqn.primitive.multiple_results else args[0]


@_register("is_finite")
def _is_finite(ctx, eqn, x):
    # A fixed-point value is always finite: the answer is public and reveals nothing.
    return jnp.ones(x.shape, jnp.bool_)


# -- products ---------------------------------------------------------------------------------------


@_register("mul")
def _mul(ctx, eqn, x, y):
    if x is y:
        return P.square(x, ctx.next_key())
    return P.mul(x, y, ctx.next_key())


@_register("square")
def _square(ctx, eqn, x):
    return P.square(x, ctx.next_key())


@_register("dot_general")
def _dot_general(ctx, eqn, x, y):
    product = functools.partial(ring.dot_general, dimension_numbers=eqn.params["dimension_numbers"])
    return arith.bilinear(x, y, ctx.next_key(), product, correlation="matmul_triple")


_CONV_PARAMS = (
    "window_strides", "padding", "lhs_dilation", "rhs_dilation", "dimension_numbers", "feature_group_count",
    "batch_group_count",
)  # fmt: skip


@_register("conv_general_dilated")
def _conv(ctx, eqn, x, w):
    params = {name: eqn.params[name] for name in _CONV_PARAMS}
    product = functools.partial(ring.conv_general, **params)
    return arith.bilinear(x, w, ctx.next_key(), product, correlation="conv_triple")


@_register("div")
def _div(ctx, eqn, x, y):
    if np.issubdtype(eqn.outvars[0].aval.dtype, np.integer):
        raise NotImplementedError("integer division of a secret is not supported")
    if not is_secret(y):
        return P.mul(x, 1.0 / jnp.asarray(y, jnp.float64), ctx.next_key())
    return P.div(x, y, ctx.next_key())


@_register("integer_pow")
def _integer_pow(ctx, eqn, x):
    exponent = eqn.params["y"]
    if exponent == 0:
        return jnp.ones(x.shape, eqn.outvars[0].aval.dtype)
    # A negative power inverts first: 1/x keeps ~1e-5 relative precision where x**n would lose it to the
    # fixed-point grid (x**n is tiny exactly where 1/x**n is large).
    base = P.reciprocal(x, ctx.next_key()) if exponent < 0 else x
    return _positive_power(ctx, base, abs(exponent))


def _positive_power(ctx, x: ArithShare, n: int) -> ArithShare:
    """``x ** n`` by repeated squaring: ``floor(log2 n)`` squarings and ``popcount(n) - 1`` products."""
    result, power = None, x
    while True:
        if n & 1:
            result = power if result is None else P.mul(result, power, ctx.next_key())
        n >>= 1
        if not n:
            return result
        power = P.square(power, ctx.next_key())


@_register("pow")
def _pow(ctx, eqn, x, y):
    if not is_secret(y):
        try:
            exponent = float(np.asarray(y))
        except (TypeError, jax.errors.ConcretizationTypeError):
            exponent = None
        if exponent is not None and np.ndim(y) == 0 and is_secret(x):
            return P.pow(x, exponent, ctx.next_key())
    # x ** y = exp(y * log(x)) for x > 0, with the exponent secret or a traced public array.
    log_x = P.log(x, ctx.next_key()) if is_secret(x) else jnp.log(x)
    return P.exp(P.mul(y, log_x, ctx.next_key()), ctx.next_key())


# -- comparisons and order --------------------------------------------------------------------------


def _comparison(protocol, same: bool):
    def rule(ctx, eqn, x, y):
        if x is y:
            # x == x for every fixed-point value (there is no NaN): a public answer that reveals nothing.
            return jnp.full(x.shape, same, jnp.bool_)
        return protocol(x, y, ctx.next_key())

    return rule


for _name, _protocol, _same in (
    ("lt", P.lt, False), ("le", P.le, True), ("gt", P.gt, False), ("ge", P.ge, True), ("eq", P.eq, True),
    ("ne", P.ne, False),
):  # fmt: skip
    RULES[_name] = _comparison(_protocol, _same)


@_register("max")
def _maximum(ctx, eqn, x, y):
    if not is_secret(y) and _is_zero(y):
        return P.relu(x, ctx.next_key())
    if not is_secret(x) and _is_zero(x):
        return P.relu(y, ctx.next_key())
    x, y = (_neutral_infinities(v, -1, ctx.frac_bits) for v in (x, y))
    return P.maximum(x, y, ctx.next_key())


@_register("min")
def _minimum(ctx, eqn, x, y):
    x, y = (_neutral_infinities(v, 1, ctx.frac_bits) for v in (x, y))
    return P.minimum(x, y, ctx.next_key())


def _neutral_infinities(value, sign: int, frac_bits: int):
    """A public operand of ``max`` (``sign = -1``) or ``min`` (``sign = 1``) with its ``sign * inf`` entries,
    which never win (``jax.nn.softmax`` and ``logsumexp`` take ``max(-inf, x)``), replaced by
    ``sign * 2^(62 - frac_bits)``, half the representable range: it never wins either against a secret
    within that half, and the difference the comparison takes stays representable."""
    if is_secret(value):
        return value
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        return value
    bound = sign * ring.max_abs(frac_bits) / 2
    return jnp.where(value == sign * jnp.inf, jnp.asarray(bound, value.dtype), value)


def _is_zero(value) -> bool:
    try:
        return bool(np.all(np.asarray(value) == 0))
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return False


@_register("clamp")
def _clamp(ctx, eqn, low, x, high):
    x = P.minimum(x, high, ctx.next_key()) if (is_secret(x) or is_secret(high)) else jnp.minimum(x, high)
    return P.maximum(x, low, ctx.next_key()) if (is_secret(x) or is_secret(low)) else jnp.maximum(x, low)


def _to_last_axis(x: ArithShare, axes: Sequence[int]) -> ArithShare:
    """Moves ``axes`` to the end and merges them into one."""
    axes = tuple(a % x.ndim for a in axes)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = x.transpose(*kept, *axes)
    return moved.reshape(*[x.shape[a] for a in kept], math.prod(x.shape[a] for a in axes))


def _reduce(protocol):
    def rule(ctx, eqn, x):
        return protocol(_to_last_axis(x, eqn.params["axes"]), ctx.next_key(), axis=-1)

    return rule


RULES["reduce_max"] = _reduce(P.max)
RULES["reduce_min"] = _reduce(P.min)


def _arg(protocol):
    def rule(ctx, eqn, x):
        (axis,) = eqn.params["axes"]
        return protocol(x, ctx.next_key(), axis=axis)

    return rule


RULES["argmax"] = _arg(P.argmax)
RULES["argmin"] = _arg(P.argmin)


@_register("sort")
def _sort(ctx, eqn, *operands):
    if len(operands) != 1:
        raise NotImplementedError("sort of several arrays together (argsort, sort by key) on secrets")
    return [P.sort(operands[0], ctx.next_key(), axis=eqn.params["dimension"])]


@_register("reduce_window_max")
def _reduce_window_max(ctx, eqn, x):
    return _windows.window_max(x, ctx.next_key(), **_windows.window_params(eqn.params))


@_register("select_and_scatter_add")
def _select_and_scatter_add(ctx, eqn, source, operand):
    if eqn.params["select_prim"].name not in ("ge", "gt"):
        raise NotImplementedError("select_and_scatter_add is supported for max pooling (select_prim ge)")
    return _windows.max_scatter(
        ctx,
        ctx.lift(source),
        operand,
        window_dimensions=eqn.params["window_dimensions"],
        window_strides=eqn.params["window_strides"],
        padding=eqn.params["padding"],
    )


# -- elementwise functions ---------------------------------------------------------------------------


def _unary(protocol):
    def rule(ctx, eqn, x):
        return protocol(x, ctx.next_key())

    return rule


for _name, _protocol in (
    ("exp", P.exp), ("log", P.log), ("logistic", P.sigmoid), ("tanh", P.tanh), ("erf", P.erf),
    ("sqrt", P.sqrt), ("rsqrt", P.rsqrt), ("sin", P.sin), ("cos", P.cos), ("abs", P.abs), ("sign", P.sign),
):  # fmt: skip
    RULES[_name] = _unary(_protocol)


@_register("erfc")
def _erfc(ctx, eqn, x):
    return -P.erf(x, ctx.next_key()) + 1.0


@_register("log1p")
def _log1p(ctx, eqn, x):
    return P.log(x + 1.0, ctx.next_key())


@_register("expm1")
def _expm1(ctx, eqn, x):
    return P.exp(x, ctx.next_key()) - 1.0


@_register("exp2")
def _exp2(ctx, eqn, x):
    return P.exp(P.mul(x, math.log(2.0), ctx.next_key()), ctx.next_key())


# -- logic on secret booleans (0.0 or 1.0): exact, through the oblivious selection ------------------


def _boolean(eqn, op: str) -> None:
    if eqn.outvars[0].aval.dtype != np.bool_:
        raise NotImplementedError(f"bitwise '{op}' on secret integers (only booleans are supported)")


@_register("and")
def _and(ctx, eqn, a, b):
    _boolean(eqn, "and")
    condition, other = (a, b) if is_secret(a) else (b, a)
    return P.where(condition, other, 0.0, ctx.next_key())


@_register("or")
def _or(ctx, eqn, a, b):
    _boolean(eqn, "or")
    return _add_bits(a, b) - _and(ctx, eqn, a, b)


@_register("xor")
def _xor(ctx, eqn, a, b):
    _boolean(eqn, "xor")
    both = _and(ctx, eqn, a, b)
    return _add_bits(a, b) - both - both


@_register("not")
def _not(ctx, eqn, a):
    _boolean(eqn, "not")
    return -a + 1.0


def _add_bits(a, b) -> ArithShare:
    """``a + b`` for two booleans of which at least one is secret (a public one counts as 0.0 or 1.0)."""
    if not is_secret(a):
        a, b = b, a
    return a + (b if is_secret(b) else jnp.asarray(b, jnp.float32))
