"""Parameter pytrees to and from shares: :func:`share_params` and :func:`reveal_params`.

Leakage: :func:`share_params` reveals nothing about the floating leaves it shares (each share alone is
uniform); leaves it keeps public (``integer_leaves="public"``) are public by the caller's choice, and the
tree's structure, shapes and dtypes are public as always. :func:`reveal_params` reveals every shared leaf
to every party, by definition.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from sjax import randomness, ring
from sjax.primitives.sharing import reveal, share
from sjax.shares import ArithShare, BinShare

__all__ = ["share_params", "reveal_params"]


def _is_share(x: Any) -> bool:
    return isinstance(x, (ArithShare, BinShare))


def _check_n_parties(n_parties: object) -> int:
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)):
        raise TypeError(f"share_params: n_parties must be an int, got {type(n_parties).__name__}")
    if n_parties < 2:
        raise ValueError(f"share_params: n_parties must be at least 2, got {n_parties}")
    return int(n_parties)


def _leaf_dtype(leaf: Any, where: str) -> np.dtype:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        try:
            dtype = jnp.asarray(leaf).dtype
        except (TypeError, ValueError):
            raise TypeError(
                f"share_params: leaf {where} is a {type(leaf).__name__}, not a numeric array"
            ) from None
    if not (jnp.issubdtype(dtype, jnp.number) or dtype == jnp.bool_):
        raise TypeError(f"share_params: leaf {where} has dtype {dtype}, not a numeric array")
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"share_params: leaf {where} is complex; share its real and imaginary parts")
    return dtype


def share_params(
    params: Any,
    key: jax.Array,
    n_parties: int = 2,
    frac_bits: int = ring.DEFAULT_FRAC_BITS,
    *,
    integer_leaves: Literal["error", "public"] = "error",
) -> Any:
    """Secret-shares every floating leaf of a pytree of parameters (flax ``params``, optax state ...).

    Each floating leaf becomes an :class:`sjax.ArithShare` of the same shape (as :func:`sjax.share` makes
    it), with its own key: ``key`` is split once into one key per leaf, in the order of
    ``jax.tree_util.tree_leaves``, so the same key gives the same shares bit for bit. The tree's structure
    (dicts, flax ``FrozenDict``, dataclasses ...) is kept.

    Integer and boolean leaves are not parameters that fixed point represents well (a step count, an
    index): by default they raise a ``TypeError`` that names the leaf, so that nothing meant to be secret
    stays public by accident. With ``integer_leaves="public"`` they are returned unchanged, as public
    arrays (for example optax's step ``count``, which the update uses as a public value). To share an
    integer leaf, convert it to a float first.

    Args:
        params: a pytree whose leaves are arrays or Python numbers.
        key: a PRNG key, used once (split into one key per leaf).
        n_parties: number of parties, at least 2.
        frac_bits: fractional bits of the encoding, in ``[0, 30]``.
        integer_leaves: ``"error"`` (the default) or ``"public"``, see above.

    Returns:
        The same tree with :class:`sjax.ArithShare` leaves in place of the floating leaves.

    Raises:
        TypeError: ``key`` is not a key, ``n_parties`` is not an int, a leaf is already a share or not
            numeric, or a leaf is an integer or boolean array and ``integer_leaves="error"``.
        ValueError: ``n_parties < 2``, ``frac_bits`` out of range, an unknown ``integer_leaves``, or (for
            concrete leaves) a leaf holds NaN, infinities or values outside ``|x| < 2**(63 - frac_bits)``;
            the message names the leaf.

    Cost: 0 rounds, 0 bytes (see :func:`sjax.share`).
    """
    key = randomness.check_key(key)
    n_parties = _check_n_parties(n_parties)
    frac_bits = ring.check_frac_bits(frac_bits)
    if integer_leaves not in ("error", "public"):
        raise ValueError(f"share_params: integer_leaves must be 'error' or 'public', got {integer_leaves!r}")
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_share)
    if not leaves:
        return params
    keys = jax.random.split(randomness.cipher_key(key), len(leaves))
    out = []
    for i, (path, leaf) in enumerate(leaves):
        where = jax.tree_util.keystr(path) or "(root)"
        if _is_share(leaf):
            raise TypeError(f"share_params: leaf {where} is already a {type(leaf).__name__}")
        dtype = _leaf_dtype(leaf, where)
        if not jnp.issubdtype(dtype, jnp.floating):
            if integer_leaves == "public":
                out.append(leaf)
                continue
            raise TypeError(
                f"share_params: leaf {where} has dtype {dtype}; only floating leaves are shared. Pass "
                "integer_leaves='public' to keep integer leaves public (e.g. a step count), or convert "
                "the leaf to a float to share it"
            )
        try:
            out.append(share(leaf, keys[i], n_parties=n_parties, frac_bits=frac_bits))
        except ValueError as error:
            raise ValueError(f"share_params: leaf {where}: {error}") from None
    return jax.tree_util.tree_unflatten(treedef, out)


def reveal_params(shared: Any, dtype: Any = None) -> Any:
    """Reveals every share in a pytree: the inverse of :func:`share_params`.

    :class:`sjax.ArithShare` leaves become ``float64`` arrays (or ``dtype``, when given, e.g.
    ``jnp.float32`` to match a flax model's parameters); :class:`sjax.BinShare` leaves become ``uint64``
    words; every other leaf is returned unchanged.

    Cost: 1 round (the openings are independent); each party sends ``8 * (n - 1)`` bytes per shared
    element. Leakage: every shared leaf, to every party.
    """

    def open_leaf(leaf):
        if isinstance(leaf, ArithShare):
            value = reveal(leaf)
            return value if dtype is None else value.astype(dtype)
        if isinstance(leaf, BinShare):
            return reveal(leaf)
        return leaf

    return jax.tree_util.tree_map(open_leaf, shared, is_leaf=_is_share)
