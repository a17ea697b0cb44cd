"""``sjax.secure``: evaluate the jaxpr of a plain JAX function with secret-shared values.

The function is traced once with the plaintext shapes (``jax.make_jaxpr``); the interpreter then walks the
equations. An equation whose operands are all public is bound as usual (it runs as normal JAX); one with a
secret operand goes to its rule (:mod:`sjax.transform._rules`). Nested jaxprs (``jit``, ``custom_jvp_call``,
``custom_vjp_call``, ``checkpoint``) are evaluated in place; ``scan``, ``while`` and ``cond`` get rules of
their own here, because their bodies are interpreted too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core

from sjax import primitives as P
from sjax import randomness
from sjax.shares import ArithShare, BinShare
from sjax.transform._context import Context, is_secret
from sjax.transform._rules import RULES

__all__ = ["secure"]


def _is_share(x: Any) -> bool:
    return isinstance(x, (ArithShare, BinShare))


def secure(f: Callable, *, secret_dtype=jnp.float32) -> Callable:
    """Transforms a plain JAX function into one that runs on secret-shared values.

    ``g = sjax.secure(f)`` is called as ``g(*args, key=key)``: arguments are pytrees whose leaves are
    :class:`ArithShare` (secret) or arrays and Python numbers (public). ``f`` sees each share as an array
    of its shape and dtype ``secret_dtype``. Outputs that depend on a secret are ArithShares at the inputs'
    ``frac_bits``; the rest stay public arrays. With no secret argument ``g`` is ``f``.

    Everything ``f`` does to public values runs as normal JAX. Linear operations on secrets are local;
    products, comparisons and functions (``exp``, ``log``, ``logistic``, ``rsqrt``, ...) run the protocols
    of :mod:`sjax.primitives`, each with a fresh key drawn from ``key``. ``jax.grad``, flax modules and optax
    updates inside ``f`` are traced to the same primitives, so ``sjax.secure(train_step)`` trains on
    secrets; ``jax.jit(sjax.secure(f))`` compiles the whole computation into one XLA program.

    Control flow: ``scan`` and ``fori_loop`` with public trip counts run as loops on shares; ``while`` loops
    whose condition stays public run as loops (:func:`sjax.cost` cannot count those); a ``cond`` on a secret
    predicate evaluates every branch and selects obliviously; a loop whose exit depends on a secret raises.

    Leakage: the shapes of the secrets and every public value ``f`` computes; nothing else. Python control
    flow on a secret fails at trace time (a secret has no concrete value).

    Args:
        f: a function of arrays, traceable by ``jax.make_jaxpr``.
        secret_dtype: the dtype under which ``f`` sees secrets (float32 by default, as flax parameters).

    Returns:
        ``g(*args, key)``, deterministic in ``key`` (bit-identical results for the same key).

    Raises:
        NotImplementedError: for a primitive on secrets that sjax has no protocol for; the message names the
            primitive and the line of ``f`` that produced it.
    """

    @functools.wraps(f)
    def secured(*args, key: jax.Array):
        key = randomness.check_key(key)
        leaves, tree = jax.tree_util.tree_flatten(args, is_leaf=_is_share)
        secrets = [leaf for leaf in leaves if _is_share(leaf)]
        if not secrets:
            return f(*args)
        for leaf in secrets:
            if isinstance(leaf, BinShare):
                raise TypeError("sjax.secure takes ArithShare secrets; convert a BinShare with sjax.b2a_bits")
        first = secrets[0]
        for other in secrets[1:]:
            if other.n_parties != first.n_parties:
                raise ValueError(
                    f"sjax.secure: secrets shared among {first.n_parties} and {other.n_parties} parties"
                )
            if other.frac_bits != first.frac_bits:
                raise ValueError(
                    f"sjax.secure: secrets with frac_bits={first.frac_bits} and frac_bits={other.frac_bits}"
                )
        abstract = [
            jax.ShapeDtypeStruct(leaf.shape, secret_dtype) if is_secret(leaf) else leaf for leaf in leaves
        ]

        def flat_f(*flat):
            return f(*jax.tree_util.tree_unflatten(tree, flat))

        closed, out_shape = jax.make_jaxpr(flat_f, return_shape=True)(*abstract)
        ctx = Context(key, first.n_parties, first.frac_bits, placed_like=first.shares)
        outs = evaluate(ctx, closed.jaxpr, closed.consts, leaves)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return secured


# Debugging hook: when set, called as ``_observer(eqn, inputs, outputs)`` after every equation, also in loop
# bodies and branches (where the values are traced). ``sjax.debug.check_overflow`` sets it for one call.
_observer: Callable[[Any, list[Any], list[Any]], None] | None = None


def evaluate(ctx: Context, jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """Evaluates ``jaxpr`` on public arrays and ArithShares."""
    env: dict[core.Var, Any] = {}

    def read(atom):
        return atom.val if isinstance(atom, core.Literal) else env[atom]

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, args):
        env[var] = value
    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        outputs = _evaluate_equation(ctx, eqn, inputs)
        if not eqn.primitive.multiple_results:
            outputs = [outputs]
        if _observer is not None:
            _observer(eqn, inputs, outputs)
        for var, value in zip(eqn.outvars, outputs):
            if not isinstance(var, core.DropVar):
                env[var] = value
    return [read(v) for v in jaxpr.outvars]


def _evaluate_equation(ctx: Context, eqn, inputs: list[Any]):
    name = eqn.primitive.name
    if name in _CALLS:
        return _call(ctx, eqn, inputs)
    if not any(is_secret(x) for x in inputs):
        return eqn.primitive.bind(*inputs, **eqn.primitive.get_bind_params(eqn.params))
    rule = _CONTROL.get(name) or RULES.get(name)
    if rule is None:
        raise NotImplementedError(
            f"sjax.secure has no protocol for the primitive '{name}' on secret values "
            f"(at {_source_line(eqn)})"
        )
    try:
        return rule(ctx, eqn, *inputs)
    except NotImplementedError as error:
        raise NotImplementedError(f"sjax.secure: {error} (primitive '{name}' at {_source_line(eqn)})") from None


def _source_line(eqn) -> str:
    try:
        from jax._src import source_info_util

        return source_info_util.summarize(eqn.source_info)
    except Exception:  # the location is a courtesy: never let it hide the real error
        return "an unknown line"


# -- nested jaxprs -----------------------------------------------------------------------------------

# Each call primitive and the parameter that holds its jaxpr (closed or not).
_CALLS = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
    "checkpoint": "jaxpr",
    "remat": "jaxpr",
    "custom_lin": None,
}


def _call(ctx: Context, eqn, inputs):
    if not any(is_secret(x) for x in inputs):
        return eqn.primitive.bind(*inputs, **eqn.primitive.get_bind_params(eqn.params))
    param = _CALLS[eqn.primitive.name]
    if param is None or param not in eqn.params:
        raise NotImplementedError(f"sjax.secure cannot open '{eqn.primitive.name}' (at {_source_line(eqn)})")
    jaxpr, consts = _open(eqn.params[param])
    return evaluate(ctx, jaxpr, consts, inputs)


def _open(jaxpr) -> tuple[core.Jaxpr, Sequence[Any]]:
    if isinstance(jaxpr, core.ClosedJaxpr):
        return jaxpr.jaxpr, jaxpr.consts
    return jaxpr, ()


def _closed_fn(ctx_for: Callable[[jax.Array], Context], closed: core.ClosedJaxpr):
    def run(key, *args):
        return evaluate(ctx_for(key), closed.jaxpr, closed.consts, args)

    return run


# -- loops and branches ------------------------------------------------------------------------------


def _split_secret(values: Sequence[Any]) -> tuple[list[Any], list[bool]]:
    """Replaces secrets by their raw shares (so that loops may slice and stack them along other axes)."""
    return [v.shares if is_secret(v) else v for v in values], [is_secret(v) for v in values]


def _lift_like(ctx: Context, values: Sequence[Any], secret: Sequence[bool]) -> list[Any]:
    return [ctx.lift(v) if s and not is_secret(v) else v for v, s in zip(values, secret)]


def _carry_fixpoint(ctx: Context, init: Sequence[Any], step_shapes: Callable[[list[Any]], list[Any]]):
    """Which loop carries are secret: those that start secret or become secret in the body."""
    secret = [is_secret(v) for v in init]
    while True:
        carry = _lift_like(ctx, init, secret)
        out = step_shapes(carry)
        grown = [s or is_secret(o) for s, o in zip(secret, out)]
        if grown == secret:
            return secret, carry
        secret = grown


def _scan(ctx: Context, eqn, *inputs):
    p = eqn.params
    body: core.ClosedJaxpr = p["jaxpr"]
    n_consts, n_carry, length = p["num_consts"], p["num_carry"], p["length"]
    consts, init, xs = inputs[:n_consts], inputs[n_consts : n_consts + n_carry], inputs[n_consts + n_carry :]
    raw_xs, xs_secret = _split_secret(xs)
    # Secret xs are scanned along their data axis 0, which is axis 1 of the stacked shares.
    raw_xs = [jnp.moveaxis(x, 1, 0) if s else x for x, s in zip(raw_xs, xs_secret)]
    ys_secret: list[bool] = []

    def step(carry_secret, carry, inputs):
        x_slices, key = inputs
        xs_here = [ArithShare(x, frac_bits=ctx.frac_bits) if s else x for x, s in zip(x_slices, xs_secret)]
        out = evaluate(ctx.child(key), body.jaxpr, body.consts, [*consts, *carry, *xs_here])
        new_carry, ys = _lift_like(ctx, out[:n_carry], carry_secret), out[n_carry:]
        raw_ys, secret = _split_secret(ys)
        ys_secret[:] = secret
        return new_carry, raw_ys

    def shapes(carry):
        x_slice = [jax.ShapeDtypeStruct(x.shape[1:], x.dtype) for x in raw_xs]
        secret = [is_secret(v) for v in carry]
        return jax.eval_shape(lambda c, x, k: step(secret, c, (x, k))[0], carry, x_slice, ctx.abstract_key())

    carry_secret, carry = _carry_fixpoint(ctx, init, shapes)
    keys = jax.random.split(ctx.next_key(), length)
    final, raw_ys = lax.scan(
        functools.partial(step, carry_secret),
        carry,
        (raw_xs, keys),
        length=length,
        reverse=p["reverse"],
        unroll=p.get("unroll", 1),
    )
    ys = [
        ArithShare(jnp.moveaxis(y, 0, 1), frac_bits=ctx.frac_bits) if s else y for y, s in zip(raw_ys, ys_secret)
    ]
    return [*final, *ys]


def _while(ctx: Context, eqn, *inputs):
    p = eqn.params
    cond, body = p["cond_jaxpr"], p["body_jaxpr"]
    n_cond, n_body = p["cond_nconsts"], p["body_nconsts"]
    cond_consts, body_consts, init = inputs[:n_cond], inputs[n_cond : n_cond + n_body], inputs[n_cond + n_body :]

    def body_step(carry_secret, carry, key):
        out = evaluate(ctx.child(key), body.jaxpr, body.consts, [*body_consts, *carry])
        return _lift_like(ctx, out, carry_secret)

    def shapes(carry):
        secret = [is_secret(v) for v in carry]
        return jax.eval_shape(lambda c, k: body_step(secret, c, k), carry, ctx.abstract_key())

    carry_secret, carry = _carry_fixpoint(ctx, init, shapes)

    def keep_going(state):
        carry, _ = state
        (go,) = evaluate(ctx, cond.jaxpr, cond.consts, [*cond_consts, *carry])
        if is_secret(go):
            raise ValueError(
                f"sjax.secure: a loop whose exit depends on a secret value (at {_source_line(eqn)}); the "
                "number of iterations would reveal it. Use a loop with a public trip count (lax.fori_loop "
                "with Python int bounds, lax.scan)."
            )
        return go

    def advance(state):
        carry, key = state
        key, here = jax.random.split(key)
        return body_step(carry_secret, carry, here), key

    final, _ = lax.while_loop(keep_going, advance, (carry, ctx.next_key()))
    return final


def _cond(ctx: Context, eqn, index, *operands):
    branches = eqn.params["branches"]
    if is_secret(index):
        outs = [evaluate(ctx.child(ctx.next_key()), b.jaxpr, b.consts, operands) for b in branches]
        return _select_branches(ctx, index, outs)

    def shapes(branch):
        return jax.eval_shape(lambda k: _closed_fn(ctx.child, branch)(k, *operands), ctx.abstract_key())

    secret = [any(is_secret(o) for o in outs) for outs in zip(*(shapes(b) for b in branches))]

    def branch_fn(branch):
        def run(key):
            return _lift_like(ctx, _closed_fn(ctx.child, branch)(key, *operands), secret)

        return run

    return lax.switch(index, [branch_fn(b) for b in branches], ctx.next_key())


def _select_branches(ctx: Context, index: ArithShare, outs: list[list[Any]]) -> list[Any]:
    """Oblivious choice among branch outputs by a secret index (0/1 for a boolean predicate)."""
    chosen = outs[0]
    for i, candidate in enumerate(outs[1:], start=1):
        pick = index if len(outs) == 2 else P.eq(index, i, ctx.next_key())
        merged = []
        for a, b in zip(candidate, chosen):
            if not (is_secret(a) or is_secret(b)) and a is b:
                merged.append(a)
            else:
                shape = a.shape if is_secret(a) else jnp.shape(a)
                merged.append(P.where(pick.broadcast_to(shape), a, b, ctx.next_key()))
        chosen = merged
    return chosen


_CONTROL = {"scan": _scan, "while": _while, "cond": _cond}
