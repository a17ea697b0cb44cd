"""Secret-share types and the operations on them that need no communication and no randomness.

A share object holds every party's share, stacked: its one array leaf is ``uint64[n_parties, *shape]``, with
party ``i``'s share at index ``i`` of axis 0. Inside a protocol body (see :mod:`sjax.parallel`) a party sees
only its own row; outside, user code holds the stacked object and never the plaintext.

* :class:`ArithShare`: additive sharing over Z_2^64 of fixed-point numbers; the secret is
  ``sum(shares) mod 2^64`` read as a two's-complement integer divided by ``2**frac_bits``.
* :class:`BinShare`: XOR sharing of 64-bit words; the secret is the XOR of the shares.

Everything here is local: each party transforms its own share. Adding a public value is done by party 0
alone. Operations that need randomness (products of two secrets, multiplying by a fractional public value,
``mean``) live in :mod:`sjax.primitives` and take a key; their operator forms raise a ``TypeError`` that
names the function to call.

Leakage: none. Shapes, dtypes and public operands are public by construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sjax import ring

__all__ = [
    "ArithShare",
    "BinShare",
    "concatenate",
    "stack",
    "encode_public_factor",
    "public_factor_bits",
    "local_matmul",
    "per_party",
    "placement",
]


def _lift(shares: jax.Array, ndim: int) -> jax.Array:
    """Inserts unit axes after the party axis so that ``shares`` broadcasts like an array of rank ``ndim``."""
    missing = ndim - (shares.ndim - 1)
    if missing <= 0:
        return shares
    return shares.reshape(shares.shape[:1] + (1,) * missing + shares.shape[1:])


def _broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"shapes {a} and {b} do not broadcast together") from None


def placement(array: Any):
    """The party mesh a stacked share array is placed on (concrete when ``array`` is, abstract under a
    trace), or ``None`` when it is simulated.

    Placed shares are sharded over a mesh axis ``"party"`` of type ``Explicit`` along their first axis, so
    the placement is part of the array's type and survives ``jax.jit`` (see :mod:`sjax.parallel`).
    """
    try:
        sharding = jax.typeof(array).sharding
    except TypeError:
        return None
    mesh = getattr(sharding, "mesh", None)
    names = getattr(mesh, "axis_names", ())
    if "party" not in names or mesh.axis_types[names.index("party")] != jax.sharding.AxisType.Explicit:
        return None
    spec = sharding.spec
    if not spec or spec[0] != "party":
        return None
    concrete = getattr(array, "sharding", None)
    if not isinstance(array, jax.core.Tracer) and concrete is not None:
        return concrete.mesh
    return mesh


def per_party(fn, *stacked: Any, in_axes: int | None | Sequence[int | None] = 0) -> Any:
    """``fn`` applied to each party's share on its own: ``jax.vmap`` over the party axis of simulated
    shares, ``jax.shard_map`` over the mesh of placed ones (each device maps its own row, so nothing mixes
    the party axis with the others).

    ``in_axes`` is 0 for a stacked operand and ``None`` for one every party holds in full, per operand.
    """
    axes = (in_axes,) * len(stacked) if not isinstance(in_axes, (tuple, list)) else tuple(in_axes)
    meshes = [placement(x) for x, axis in zip(stacked, axes) if axis == 0]
    mesh = next((m for m in meshes if m is not None), None)
    if mesh is None:
        return jax.vmap(fn, in_axes=axes)(*stacked)
    specs = tuple(jax.sharding.PartitionSpec("party") if a == 0 else jax.sharding.PartitionSpec() for a in axes)

    def local(*operands):
        own = [o[0] if a == 0 else o for o, a in zip(operands, axes)]
        return jax.tree.map(lambda r: r[None], fn(*own))

    # check_vma=False: public operands (replicated) meet shares (varying) in ops like select_n.
    return jax.shard_map(
        local, mesh=mesh, in_specs=specs, out_specs=jax.sharding.PartitionSpec("party"), check_vma=False
    )(
        *stacked
    )


def _dealer_slots(shares: jax.Array) -> int:
    """1 if ``shares`` live on a processes runner's mesh, whose last party slot is the dealer's, else 0.

    The mark is the mesh axis ``sjax.comm.DEALER_AXIS`` (``"dealer"``), part of the array's type, so this
    also holds for traced shares.
    """
    try:
        mesh = jax.typeof(shares).sharding.mesh
    except (TypeError, AttributeError):
        return 0
    return int("dealer" in getattr(mesh, "axis_names", ()))


def _first_party_mask(n_parties: int, ndim: int) -> jax.Array:
    """``bool[n_parties, 1, ..., 1]``, true for party 0: the party that applies public constants."""
    return (jnp.arange(n_parties) == 0).reshape((n_parties,) + (1,) * ndim)


def _normalize_axis(axis: int, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for a share of rank {ndim}")
    return int(axis) % ndim


def _normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(_normalize_axis(a, ndim) for a in axis)


def _public_array(value: Any, what: str) -> jax.Array:
    if isinstance(value, (ArithShare, BinShare)):
        raise TypeError(f"{what}: expected a public value, got a {type(value).__name__}")
    if value is None:
        raise TypeError(f"{what}: expected a public array or number, got None")
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: expected a public array or number, got {type(value).__name__}") from None
    if array.dtype == ring.RING_DTYPE:
        raise TypeError(f"{what}: uint64 public values are ambiguous; pass int64 or float values")
    if not (jnp.issubdtype(array.dtype, jnp.number) or array.dtype == jnp.bool_):
        raise TypeError(f"{what}: expected a numeric public value, got dtype {array.dtype}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError(f"{what}: complex values cannot be shared")
    return array


def _check_public_range(array: jax.Array, frac_bits: int, what: str) -> None:
    """Rejects NaN, infinities and values the ring cannot hold at ``frac_bits``, when ``array`` is concrete."""
    if isinstance(array, jax.core.Tracer):
        return
    values = np.asarray(array, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{what}: public values must be finite, got NaN or infinity")
    if (np.abs(values) >= ring.max_abs(frac_bits)).any():
        raise ValueError(f"{what}: public value outside the representable range |c| < 2^{63 - frac_bits}")


def public_factor_bits(value: Any, frac_bits: int) -> int:
    """Fractional bits to encode a floating public factor with: ``frac_bits``, plus the leading zero bits of a
    concrete factor below 1 in magnitude.

    A factor ``c`` with ``max|c| < 2^-g`` is encoded with ``frac_bits + g`` bits, so that its rounding
    error stays near ``2^-(frac_bits + 1)`` of ``max|c|`` (``1 / 569`` at 16 bits is otherwise 0.15% off)
    and the product of a share ``x`` with it is truncated by ``frac_bits + g`` bits, at no extra cost. The
    truncation then needs ``|x * c| * 2^g < 2^(62 - 2 frac_bits)``, which ``|x| < 2^(62 - 2 frac_bits)``
    ensures. ``g`` is at most ``62 - 2 frac_bits``; a traced factor (its values unknown when the program is
    built) gets ``g = 0``.
    """
    if isinstance(value, jax.core.Tracer):
        return frac_bits
    largest = float(np.max(np.abs(np.asarray(value, dtype=np.float64)), initial=0.0))
    if not 0.0 < largest < 1.0:
        return frac_bits
    return frac_bits + min(int(np.floor(-np.log2(largest))), max(62 - 2 * frac_bits, 0))


def encode_public_factor(value: Any, frac_bits: int, what: str = "public operand") -> tuple[jax.Array, int]:
    """Encodes a public multiplier of a share, with the truncation its product needs.

    Integer and boolean values are encoded exactly (no fractional bits; no truncation). Floating values are
    encoded with :func:`public_factor_bits` fractional bits, and the product is truncated by as many.

    Returns:
        ``(encoded, shift)``: the ring elements and the bits to truncate the product by (0: none).
    """
    array = _public_array(value, what)
    if jnp.issubdtype(array.dtype, jnp.floating):
        # Inside a trace jnp.asarray makes even a Python constant a tracer: inspect the value as given.
        known = array if isinstance(value, jax.core.Tracer) else value
        _check_public_range(known, frac_bits, what)
        bits = public_factor_bits(known, frac_bits)
        return ring.encode(array, bits), bits
    return ring.encode(array, 0), 0


def local_matmul(x: jax.Array, w: jax.Array, *, share_on_left: bool) -> jax.Array:
    """Each party's share times a public ring matrix: ``x_i @ w`` or ``w @ x_i`` for every party ``i``."""
    if share_on_left:
        return per_party(lambda s, w: ring.matmul(s, w), x, w, in_axes=(0, None))
    return per_party(lambda s, w: ring.matmul(w, s), x, w, in_axes=(0, None))


class _Shared:
    """Structure shared by both share types: the stacked leaf and the shape-only operations on it."""

    shares: jax.Array
    # Make numpy defer to our reflected operators instead of iterating over a share.
    __array_ufunc__ = None

    def _with(self, shares: jax.Array):
        return dataclasses.replace(self, shares=shares)

    @property
    def n_parties(self) -> int:
        """Number of parties: the length of the stacked party axis, less the dealer's slot if it has one."""
        return self.shares.shape[0] - _dealer_slots(self.shares)

    @property
    def _slots(self) -> int:
        """Length of the stacked party axis (under the processes runner it ends with the dealer's slot)."""
        return self.shares.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the secret value (the party axis excluded)."""
        return tuple(self.shares.shape[1:])

    @property
    def ndim(self) -> int:
        """Rank of the secret value."""
        return self.shares.ndim - 1

    @property
    def size(self) -> int:
        """Number of elements of the secret value."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d share")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d share")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of a {type(self).__name__} is secret; reveal it with sjax.reveal, "
            "or select obliviously"
        )

    def __array__(self, *args, **kwargs):
        raise TypeError(f"a {type(self).__name__} is secret and has no plaintext array: call sjax.reveal(x)")

    def __repr__(self) -> str:
        meta = "".join(
            f", {f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self) if f.name != "shares"
        )
        return f"{type(self).__name__}(shape={self.shape}, n_parties={self.n_parties}{meta})"

    def __getitem__(self, index) -> Any:
        """Indexes the secret with public (static or traced) indices and slices; each party indexes its share."""
        if not isinstance(index, tuple):
            index = (index,)
        if any(isinstance(i, (ArithShare, BinShare)) for i in index):
            raise TypeError("indexing with a secret index is not supported; indices must be public")
        # Each party indexes its own share: numpy's rules for mixed advanced indices then apply unchanged.
        return self._with(per_party(lambda share: share[index], self.shares))

    def reshape(self, *shape) -> Any:
        """Reshapes the secret (``-1`` allowed), like ``jnp.reshape``."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        try:
            return self._with(self.shares.reshape((self._slots,) + tuple(shape)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"cannot reshape a share of shape {self.shape} into {tuple(shape)}") from error

    def transpose(self, *axes) -> Any:
        """Permutes the axes of the secret, like ``jnp.transpose`` (reverses them by default).

        Takes the permutation as one sequence or as separate ints, as arrays do.
        """
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], (int, np.integer))):
            axes = axes[0]
        if not axes:
            axes = None
        if axes is None:
            axes = tuple(reversed(range(self.ndim)))
        axes = tuple(_normalize_axis(a, self.ndim) for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {self.ndim} axes of the share")
        return self._with(self.shares.transpose((0,) + tuple(a + 1 for a in axes)))

    @property
    def T(self) -> Any:
        """The secret with its axes reversed."""
        return self.transpose()

    def broadcast_to(self, shape: Sequence[int]) -> Any:
        """Broadcasts the secret to ``shape`` with numpy's rules."""
        shape = tuple(shape)
        if _broadcast_shape(self.shape, shape) != shape:
            raise ValueError(f"cannot broadcast a share of shape {self.shape} to {shape}")
        return self._with(jnp.broadcast_to(_lift(self.shares, len(shape)), (self._slots,) + shape))

    def pad(self, pad_width) -> Any:
        """Pads the secret with zeros, with ``jnp.pad``'s ``pad_width`` (an int, a pair or a pair per axis)."""
        try:
            requested = np.asarray(pad_width)
        except ValueError:
            raise ValueError(
                f"pad widths {pad_width!r} are ragged: give an int, a (before, after) pair, or one pair per axis"
            ) from None
        if not (np.issubdtype(requested.dtype, np.integer) or requested.size == 0):
            raise TypeError(f"pad widths must be integers, got {pad_width!r}")
        try:
            widths = np.broadcast_to(requested.astype(np.int64), (self.ndim, 2))
        except ValueError:
            raise ValueError(
                f"pad widths {pad_width!r} do not fit a share of rank {self.ndim}: give an int, a (before, "
                "after) pair, or one pair per axis"
            ) from None
        if (widths < 0).any():
            raise ValueError(f"pad widths must be non-negative, got {pad_width}")
        # A sharing of zero in which every share is zero: the padded positions are public anyway.
        return self._with(jnp.pad(self.shares, [(0, 0)] + [tuple(map(int, w)) for w in widths]))

    def _check_compatible(self, other: _Shared, op: str) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot {op} a {type(self).__name__} and a {type(other).__name__}")
        if other.n_parties != self.n_parties:
            raise ValueError(
                f"cannot {op} shares of {self.n_parties} parties and shares of {other.n_parties} parties"
            )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ArithShare(_Shared):
    """An additively secret-shared array of fixed-point numbers over Z_2^64.

    The secret is ``decode(sum_i shares[i] mod 2^64, frac_bits)``. A registered pytree: the stacked shares
    ``uint64[n_parties, *shape]`` are its one leaf, ``frac_bits`` is static, so shares pass through
    ``jax.jit``, ``lax.scan`` and ``jax.tree_util`` like arrays.

    Representable range: ``|x| < 2**(63 - frac_bits)`` (about 1.4e14 for 16 bits); beyond it values wrap
    around modulo 2^64. Products need ``|x * y| < 2**(62 - 2 * frac_bits)`` (about 1.07e9 for 16 bits), see
    :func:`sjax.truncate`. Resolution is ``2**-frac_bits`` (about 1.5e-5).

    Local operators: ``+``, ``-`` (with shares or public values, broadcasting), unary ``-``, ``*`` and ``@``
    with public integers. Multiplying by a fractional public value or by another share needs a key: use
    :func:`sjax.mul` and :func:`sjax.matmul`.

    Attributes:
        shares: ``uint64[n_parties, *shape]``, party ``i``'s share at index ``i``.
        frac_bits: number of fractional bits of the fixed-point encoding (static).
    """

    shares: jax.Array
    frac_bits: int = ring.DEFAULT_FRAC_BITS

    def __post_init__(self):
        # Leaves may be tracers or placeholders while JAX transforms the pytree; check only real arrays.
        dtype = getattr(self.shares, "dtype", None)
        if dtype is not None and dtype != ring.RING_DTYPE:
            raise TypeError(f"ArithShare.shares must be uint64 ring elements, got {dtype}")
        ring.check_frac_bits(self.frac_bits)

    # -- combining ------------------------------------------------------------------------------------

    def _check_compatible(self, other: _Shared, op: str) -> None:
        super()._check_compatible(other, op)
        if other.frac_bits != self.frac_bits:
            raise ValueError(
                f"cannot {op} shares with frac_bits={self.frac_bits} and frac_bits={other.frac_bits}"
            )

    def _add(self, other: Any, sign: int, op: str) -> ArithShare:
        if isinstance(other, _Shared):
            self._check_compatible(other, op)
            ndim = len(_broadcast_shape(self.shape, other.shape))
            a, b = _lift(self.shares, ndim), _lift(other.shares, ndim)
            return self._with(a + b if sign > 0 else a - b)
        public = _public_array(other, f"ArithShare {op}")
        _check_public_range(public, self.frac_bits, f"ArithShare {op}")
        encoded = ring.encode(public, self.frac_bits)
        ndim = len(_broadcast_shape(self.shape, public.shape))
        constant = jnp.where(_first_party_mask(self._slots, ndim), encoded, jnp.uint64(0))
        shares = _lift(self.shares, ndim)
        return self._with(shares + constant if sign > 0 else shares - constant)

    def __add__(self, other: Any) -> ArithShare:
        return self._add(other, +1, "add")

    __radd__ = __add__

    def __sub__(self, other: Any) -> ArithShare:
        return self._add(other, -1, "subtract")

    def __rsub__(self, other: Any) -> ArithShare:
        return (-self)._add(other, +1, "subtract")

    def __neg__(self) -> ArithShare:
        return self._with(jnp.uint64(0) - self.shares)

    def __pos__(self) -> ArithShare:
        return self

    # -- products with public values -------------------------------------------------------------------

    def __mul__(self, other: Any) -> ArithShare:
        if isinstance(other, _Shared):
            raise TypeError(
                "multiplying two secrets needs a Beaver triple and a key: call sjax.mul(x, y, key)"
            )
        encoded, shift = encode_public_factor(other, self.frac_bits, "ArithShare *")
        if shift:
            raise TypeError(
                "multiplying a share by a fractional public value needs a truncation, which uses "
                "randomness: call sjax.mul(x, c, key) (integer public values multiply locally)"
            )
        ndim = len(_broadcast_shape(self.shape, encoded.shape))
        return self._with(_lift(self.shares, ndim) * encoded)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> ArithShare:
        if isinstance(other, _Shared):
            raise TypeError("dividing by a secret is a protocol of its own: call sjax.div(x, y, key)")
        raise TypeError(
            "dividing a share by a public value needs a truncation, which uses randomness: "
            "call sjax.mul(x, 1 / c, key)"
        )

    def __rtruediv__(self, other: Any) -> ArithShare:
        raise TypeError("dividing by a secret is a protocol of its own: call sjax.div(x, y, key)")

    def _matmul_public(self, other: Any, share_on_left: bool) -> ArithShare:
        if isinstance(other, _Shared):
            raise TypeError(
                "the product of two secret matrices needs a matrix triple and a key: "
                "call sjax.matmul(x, y, key)"
            )
        encoded, shift = encode_public_factor(other, self.frac_bits, "ArithShare @")
        if shift:
            raise TypeError(
                "a matrix product with a fractional public matrix needs a truncation, which uses "
                "randomness: call sjax.matmul(x, w, key) (integer public matrices multiply locally)"
            )
        _check_matmul_shapes(self.shape, encoded.shape, share_on_left)
        return self._with(local_matmul(self.shares, encoded, share_on_left=share_on_left))

    def __matmul__(self, other: Any) -> ArithShare:
        return self._matmul_public(other, share_on_left=True)

    def __rmatmul__(self, other: Any) -> ArithShare:
        return self._matmul_public(other, share_on_left=False)

    # -- reductions ------------------------------------------------------------------------------------

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> ArithShare:
        """Sums the secret over ``axis`` (all axes by default); local, exact in the ring."""
        axes = _normalize_axes(axis, self.ndim)
        return self._with(jnp.sum(self.shares, axis=tuple(a + 1 for a in axes), keepdims=keepdims))

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, *, key=None) -> ArithShare:
        """Averages the secret over ``axis``: a local sum, then a multiply by ``1/count`` and a truncation.

        The truncation needs fresh randomness, so ``key`` is required; the cost is that of
        :func:`sjax.truncate` on the result (1 round).
        """
        if key is None:
            raise TypeError(
                "ArithShare.mean divides by a public count, which needs a truncation with fresh randomness: "
                "call x.mean(axis, key=key) or sjax.mean(x, key, axis=axis)"
            )
        # Layers below the share types implement the truncation; import them only when used.
        from sjax.primitives.arith import mean

        return mean(self, key, axis=axis, keepdims=keepdims)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class BinShare(_Shared):
    """An XOR secret-shared array of 64-bit words.

    The secret is ``shares[0] ^ shares[1] ^ ... ^ shares[n-1]``, each element 64 packed bits. A registered
    pytree with the stacked shares ``uint64[n_parties, *shape]`` as its one leaf.

    Local operators: ``^`` with shares or public words, ``&`` and ``|`` with public words, ``~``, and
    shifts ``<<`` / ``>>`` by public amounts. AND of two secrets is a protocol with AND triples (see
    the comparison primitives).

    Attributes:
        shares: ``uint64[n_parties, *shape]``, party ``i``'s share at index ``i``.
    """

    shares: jax.Array

    def __post_init__(self):
        dtype = getattr(self.shares, "dtype", None)
        if dtype is not None and dtype != ring.RING_DTYPE:
            raise TypeError(f"BinShare.shares must be uint64 words, got {dtype}")

    def _public_words(self, other: Any, op: str) -> jax.Array:
        array = jnp.asarray(other) if not isinstance(other, _Shared) else None
        if array is None or not (jnp.issubdtype(array.dtype, jnp.integer) or array.dtype == jnp.bool_):
            raise TypeError(f"BinShare {op}: expected a public integer array, got {type(other).__name__}")
        return array.astype(jnp.int64).astype(ring.RING_DTYPE) if array.dtype != jnp.uint64 else array

    def __xor__(self, other: Any) -> BinShare:
        if isinstance(other, _Shared):
            self._check_compatible(other, "XOR")
            ndim = len(_broadcast_shape(self.shape, other.shape))
            return self._with(_lift(self.shares, ndim) ^ _lift(other.shares, ndim))
        words = self._public_words(other, "^")
        ndim = len(_broadcast_shape(self.shape, words.shape))
        constant = jnp.where(_first_party_mask(self._slots, ndim), words, jnp.uint64(0))
        return self._with(_lift(self.shares, ndim) ^ constant)

    __rxor__ = __xor__

    def __and__(self, other: Any) -> BinShare:
        if isinstance(other, _Shared):
            raise TypeError(
                "AND of two secret BinShares needs AND triples and a key; it is a protocol, "
                "not a local operator"
            )
        words = self._public_words(other, "&")
        ndim = len(_broadcast_shape(self.shape, words.shape))
        # AND with a public mask distributes over XOR: every party masks its own share.
        return self._with(_lift(self.shares, ndim) & words)

    __rand__ = __and__

    def __or__(self, other: Any) -> BinShare:
        if isinstance(other, _Shared):
            raise TypeError("OR of two secret BinShares needs AND triples and a key; it is a protocol")
        words = self._public_words(other, "|")
        # x | c = (x & ~c) ^ c
        return (self & ~words) ^ words

    __ror__ = __or__

    def __invert__(self) -> BinShare:
        flip = jnp.where(_first_party_mask(self._slots, self.ndim), ~jnp.uint64(0), jnp.uint64(0))
        return self._with(self.shares ^ flip)

    def _shift(self, amount: Any, op) -> BinShare:
        if isinstance(amount, _Shared):
            raise TypeError("shifting by a secret amount is not supported; shift amounts must be public")
        amount = jnp.asarray(amount)
        if not jnp.issubdtype(amount.dtype, jnp.integer):
            raise TypeError(f"shift amounts must be integers, got dtype {amount.dtype}")
        # XOR sharing is bitwise, so logical shifts commute with reconstruction.
        ndim = len(_broadcast_shape(self.shape, amount.shape))
        return self._with(op(_lift(self.shares, ndim), amount.astype(ring.RING_DTYPE)))

    def __lshift__(self, amount: Any) -> BinShare:
        return self._shift(amount, jnp.left_shift)

    def __rshift__(self, amount: Any) -> BinShare:
        return self._shift(amount, jnp.right_shift)


jax.tree_util.register_dataclass(ArithShare, data_fields=["shares"], meta_fields=["frac_bits"])
jax.tree_util.register_dataclass(BinShare, data_fields=["shares"], meta_fields=[])


def _check_matmul_shapes(share_shape, public_shape, share_on_left: bool) -> None:
    left, right = (share_shape, public_shape) if share_on_left else (public_shape, share_shape)
    try:
        jax.eval_shape(jnp.matmul, jax.ShapeDtypeStruct(left, jnp.int64), jax.ShapeDtypeStruct(right, jnp.int64))
    except (TypeError, ValueError):
        raise ValueError(f"matmul shapes {left} and {right} do not match") from None


def _check_sequence(shares: Sequence[_Shared], what: str) -> _Shared:
    shares = list(shares)
    if not shares:
        raise ValueError(f"{what} needs at least one share")
    first = shares[0]
    if not isinstance(first, _Shared):
        raise TypeError(f"{what} takes shares, got {type(first).__name__}")
    for other in shares[1:]:
        if not isinstance(other, _Shared):
            raise TypeError(f"{what} takes shares, got {type(other).__name__}")
        first._check_compatible(other, what)
    return first


def concatenate(shares: Sequence[ArithShare | BinShare], axis: int = 0):
    """Joins shares along an existing axis of the secret, like ``jnp.concatenate``. Local."""
    first = _check_sequence(shares, "concatenate")
    if first.ndim == 0:
        raise ValueError("cannot concatenate 0-d shares; use sjax.stack")
    axis = _normalize_axis(axis, first.ndim)
    for other in shares:
        if other.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(other.shape, first.shape)) if i != axis
        ):
            raise ValueError(f"cannot concatenate shapes {first.shape} and {other.shape} along axis {axis}")
    return first._with(jnp.concatenate([s.shares for s in shares], axis=axis + 1))


def stack(shares: Sequence[ArithShare | BinShare], axis: int = 0):
    """Stacks shares along a new axis of the secret, like ``jnp.stack``. Local."""
    first = _check_sequence(shares, "stack")
    for other in shares:
        if other.shape != first.shape:
            raise ValueError(f"cannot stack shares of shapes {first.shape} and {other.shape}")
    axis = _normalize_axis(axis, first.ndim + 1)
    return first._with(jnp.stack([s.shares for s in shares], axis=axis + 1))

