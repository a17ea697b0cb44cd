"""Arithmetic in the ring Z_2^64 and the fixed-point encoding of reals into it.

Ring elements are ``uint64`` arrays; addition, subtraction and multiplication wrap around modulo 2^64, which
is exactly the ring. A real ``x`` is encoded as ``round(x * 2**frac_bits) mod 2**64`` and read back as the
two's-complement integer divided by ``2**frac_bits``.

Every ring matrix product and convolution in sjax goes through :func:`matmul`, :func:`dot_general`,
:func:`conv2d` and :func:`conv_general`, so that they are made fast in one place: they split ring elements
into limbs, multiply the limbs exactly with XLA's floating-point dot and convolution (BLAS speed) and
recombine them modulo 2^64, bit for bit the native ``uint64`` result. The decomposition is chosen per
backend when a product is traced (:func:`auto_product_method`; :func:`set_product_method`,
:func:`product_method_scope`, the ``method=`` argument or ``SJAX_RING_PRODUCT`` override it), and
``"native"`` keeps XLA's own ``uint64`` product as the reference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "RING_BITS",
    "RING_DTYPE",
    "DEFAULT_FRAC_BITS",
    "MAX_FRAC_BITS",
    "max_abs",
    "check_frac_bits",
    "encode",
    "decode",
    "to_signed",
    "matmul",
    "conv2d",
    "dot_general",
    "conv_general",
    "Decomposition",
    "DECOMPOSITIONS",
    "PRODUCT_METHODS",
    "auto_product_method",
    "product_method",
    "set_product_method",
    "product_method_scope",
]

RING_BITS = 64
RING_DTYPE = jnp.uint64
DEFAULT_FRAC_BITS = 16
# Truncation needs |x * y * 2^(2f)| < 2^62, so 2f must leave room for at least one integer bit.
MAX_FRAC_BITS = 30


def check_frac_bits(frac_bits: object) -> int:
    """Returns ``frac_bits`` as an int, or raises if it is not an integer in [0, MAX_FRAC_BITS]."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise TypeError(f"frac_bits must be an int, got {type(frac_bits).__name__}")
    if not 0 <= frac_bits <= MAX_FRAC_BITS:
        raise ValueError(f"frac_bits must be in [0, {MAX_FRAC_BITS}], got {frac_bits}")
    return int(frac_bits)


def max_abs(frac_bits: int) -> float:
    """The largest magnitude a share with ``frac_bits`` fractional bits can hold: 2^(63 - frac_bits).

    Encoded values live in [-2^63, 2^63) as two's-complement integers; beyond that they wrap around.
    """
    return float(2 ** (RING_BITS - 1 - frac_bits))


def to_signed(x: jax.Array) -> jax.Array:
    """Reinterprets ring elements as two's-complement ``int64`` (no change of bits)."""
    return lax.bitcast_convert_type(x, jnp.int64)


def encode(x, frac_bits: int = DEFAULT_FRAC_BITS) -> jax.Array:
    """Encodes reals or integers as ring elements: ``round(x * 2**frac_bits) mod 2**64``.

    Floats are rounded half to even after the exact scaling by a power of two (done in ``float64``);
    integers are shifted exactly. Values with ``|x| >= 2**(63 - frac_bits)`` wrap around; the public
    entry points check for that (see :func:`sjax.share`), this function does not.

    Args:
        x: array-like of bool, integer or floating dtype.
        frac_bits: number of fractional bits.

    Returns:
        ``uint64`` array of the same shape.
    """
    x = jnp.asarray(x)
    if x.dtype == RING_DTYPE:
        raise TypeError("encode expects plaintext numbers, got uint64 ring elements")
    if jnp.issubdtype(x.dtype, jnp.floating):
        scaled = jnp.round(x.astype(jnp.float64) * (2.0**frac_bits))
        # Reduce into [-2^63, 2^63) first: a float-to-int conversion saturates, the ring wraps around.
        # fmod is exact, and so are the corrections (past 2^53 every float64 is an integer).
        wrapped = jnp.fmod(scaled, 2.0**64)
        wrapped = jnp.where(wrapped >= 2.0**63, wrapped - 2.0**64, wrapped)
        wrapped = jnp.where(wrapped < -(2.0**63), wrapped + 2.0**64, wrapped)
        return wrapped.astype(jnp.int64).astype(RING_DTYPE)
    return jnp.left_shift(x.astype(jnp.int64), frac_bits).astype(RING_DTYPE)


def decode(x: jax.Array, frac_bits: int = DEFAULT_FRAC_BITS) -> jax.Array:
    """Decodes ring elements to ``float64``: the two's-complement value divided by ``2**frac_bits``."""
    return to_signed(x).astype(jnp.float64) * (2.0**-frac_bits)


# -- ring products ---------------------------------------------------------------------------------------
#
# XLA multiplies uint64 matrices with a naive loop on CPU (and without BLAS on GPU): a 256x256 product took
# about 40 ms on a 2-core x86-64 CPU, against 0.5 ms in float32. The products below split every ring
# element into limbs small enough that limb products and their sums are exact in a floating-point type,
# multiply the limbs with XLA's floating-point dot or convolution (BLAS, cuBLAS, the MXU), and recombine
# the integer results modulo 2^64 in uint64.
#
# Exactness. Write a = sum_i a_i 2^(o_i), b = sum_j b_j 2^(o_j), with limbs 0 <= a_i < 2^(w_i) at offsets
# o_i. Then a * b mod 2^64 = sum over the pairs with o_i + o_j < 64 of a_i b_j 2^(o_i + o_j), mod 2^64 (the
# other pairs are multiples of 2^64). A sum of K limb products is an integer in [0, K (2^w_i - 1)(2^w_j - 1)];
# a float type with p significand bits holds every integer up to 2^p exactly, and every partial sum of
# non-negative terms is at most the total, so the float dot is exact, in any summation order, whenever
# K (2^w_i - 1)(2^w_j - 1) <= 2^p (p = 53 for float64, 24 for float32). Longer contractions are split into
# chunks of at most that many terms; each chunk's exact float result (< 2^p) converts exactly to an integer,
# and chunks and pairs are shifted and summed in uint64, where wrap-around is the reduction modulo 2^64. So
# the result equals the native uint64 product bit for bit, for all inputs.


@dataclasses.dataclass(frozen=True)
class Decomposition:
    """How a ring product is computed: natively in ``uint64``, or as limb products in a float type.

    Attributes:
        name: the key in :data:`DECOMPOSITIONS`.
        float_dtype: the type the limbs are multiplied in; ``None`` for the native ``uint64`` product.
        widths: limb widths in bits, least significant first (they sum to 64).
        precision: the ``lax.Precision`` passed to XLA's dot and convolution.
    """

    name: str
    float_dtype: Any
    widths: tuple[int, ...] = ()
    precision: Any = None

    @property
    def offsets(self) -> tuple[int, ...]:
        """The bit offset of each limb."""
        return tuple(int(v) for v in np.cumsum((0,) + self.widths[:-1]))

    @property
    def significand_bits(self) -> int:
        """p: every integer in [0, 2^p] is exact in the float type."""
        return int(np.finfo(self.float_dtype).nmant) + 1

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The limb pairs (i, j) whose product's shift o_i + o_j is below 64: the only ones that count."""
        offsets = self.offsets
        n = len(offsets)
        return tuple((i, j) for j in range(n) for i in range(n) if offsets[i] + offsets[j] < 64)

    @property
    def max_terms(self) -> int:
        """The longest exact contraction in one float product: K (2^w_i - 1)(2^w_j - 1) <= 2^p, all pairs."""
        largest = max(((1 << self.widths[i]) - 1) * ((1 << self.widths[j]) - 1) for i, j in self.pairs)
        return (1 << self.significand_bits) // largest


DECOMPOSITIONS: dict[str, Decomposition] = {
    # XLA's own uint64 product: the reference, and the fallback for convolution windows too large to chunk.
    "native": Decomposition("native", None),
    # 22-bit limbs in float64: 6 limb products (of 9), contractions of up to 512 terms per float product.
    "f64x22": Decomposition("f64x22", np.float64, (22, 22, 20), lax.Precision.HIGHEST),
    # 16-bit limbs in float64: 10 limb products (of 16), contractions of up to 2^21 terms per float product.
    "f64x16": Decomposition("f64x16", np.float64, (16, 16, 16, 16), lax.Precision.HIGHEST),
    # 8-bit limbs in float32: 36 limb products (of 64), contractions of up to 258 terms per float product.
    # A limb (< 2^8) and a product of two (< 2^16) are exact in bfloat16 and TF32 inputs with float32
    # accumulation, so XLA's DEFAULT precision (one bfloat16 pass on TPU, TF32 on recent NVIDIA GPUs) is
    # exact.
    "f32x8": Decomposition("f32x8", np.float32, (8,) * 8, lax.Precision.DEFAULT),
}

PRODUCT_METHODS = ("auto", *DECOMPOSITIONS)

# GPUs whose float64 throughput is at least a quarter of float32's (data-centre cards); other GPUs (GeForce,
# RTX workstation cards, T4, L4, L40, A10, A40) run float64 at 1/32 or 1/64 of float32.
_FAST_FLOAT64_GPU = re.compile(
    r"\b(A100|A800|A30|H100|H800|H200|H20|GH200|GB200|B100|B200|V100|P100|MI\d{3}\w*)\b", re.I
)

_method_override: str | None = None


def auto_product_method(backend: str | None = None, device_kind: str | None = None) -> str:
    """The decomposition ``"auto"`` picks for a backend (default: JAX's default backend and its first device).

    ``"f64x22"`` on CPU and on GPUs with fast float64 (A100, H100, H200, V100, MI200, ...; 6 float64 limb
    products); ``"f32x8"`` on TPU and other GPUs, where float64 is slow or emulated (36 float32 limb
    products). On a 2-core x86-64 CPU, 256x256: native 38 ms, f64x16 7.4 ms, f64x22 5.4 ms, f32x8 15 ms.
    """
    if backend is None:
        backend = jax.default_backend()
    if backend == "cpu":
        return "f64x22"
    if backend in ("gpu", "cuda", "rocm"):
        if device_kind is None:
            device_kind = jax.devices(backend)[0].device_kind
        return "f64x22" if _FAST_FLOAT64_GPU.search(device_kind) else "f32x8"
    return "f32x8"


def set_product_method(method: str | None) -> None:
    """Sets the decomposition every ring product uses from now on (``None`` or ``"auto"``: by backend).

    The choice is read when a product is traced: a function already compiled by ``jax.jit`` keeps the
    decomposition it was traced with. The environment variable ``SJAX_RING_PRODUCT`` sets the initial choice.
    """
    global _method_override
    if method is not None and method not in PRODUCT_METHODS:
        raise ValueError(f"unknown ring product method {method!r}; choose one of {PRODUCT_METHODS}")
    _method_override = None if method == "auto" else method


@contextlib.contextmanager
def product_method_scope(method: str | None):
    """Uses ``method`` for the ring products traced inside the ``with`` block (see ``set_product_method``)."""
    global _method_override
    previous = _method_override
    set_product_method(method)
    try:
        yield
    finally:
        _method_override = previous


def product_method(method: str | None = None) -> str:
    """The decomposition a ring product traced now uses: ``method``, else the one set, else ``"auto"``'s."""
    if method is None or method == "auto":
        method = _method_override or os.environ.get("SJAX_RING_PRODUCT") or "auto"
    if method not in PRODUCT_METHODS:
        raise ValueError(f"unknown ring product method {method!r}; choose one of {PRODUCT_METHODS}")
    return auto_product_method() if method == "auto" else method


def matmul(a: jax.Array, b: jax.Array, *, method: str | None = None) -> jax.Array:
    """The ring matrix product ``a @ b`` modulo 2^64, with ``jnp.matmul`` semantics (batching, 1-D operands).

    Every ring matrix product in sjax is computed here. Domain: any ``uint64`` operands. Exact: bit for bit
    the native ``uint64`` product (wrap-around), by the argument at the top of this section.

    Cost, for ``[m, k] @ [k, n]`` with the ``"f64x22"`` decomposition: 6 float64 matrix products of the
    same shape (chunked along ``k`` by 512), plus O(m k + k n + m n) elementwise work to split and
    recombine; ``"f64x16"``: 10 float64 products (chunks of 2^21); ``"f32x8"``: 36 float32 products (chunks
    of 258). ``method`` overrides :func:`product_method`.
    """
    _check_ring(a, b)
    out = jax.eval_shape(functools.partial(jnp.matmul, preferred_element_type=RING_DTYPE), a, b)
    decomposition = DECOMPOSITIONS[product_method(method)]
    if decomposition.float_dtype is None:
        return jnp.matmul(a, b, preferred_element_type=RING_DTYPE)
    if out.size == 0 or a.shape[-1] == 0:
        return jnp.zeros(out.shape, RING_DTYPE)
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    a = a[None, :] if vector_a else a
    b = b[:, None] if vector_b else b
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.ndim == 2:  # fold a's batch dimensions into its rows
        product = _limb_matmul(a.reshape(-1, k), b, decomposition).reshape(*a.shape[:-1], n)
    elif a.ndim == 2:  # fold b's batch dimensions into its columns
        columns = jnp.moveaxis(b, -2, 0).reshape(k, -1)
        product = _limb_matmul(a, columns, decomposition).reshape(m, *b.shape[:-2], n)
        product = jnp.moveaxis(product, 0, -2)
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a3 = jnp.broadcast_to(a, (*batch, m, k)).reshape(-1, m, k)
        b3 = jnp.broadcast_to(b, (*batch, k, n)).reshape(-1, k, n)
        product = _limb_matmul(a3, b3, decomposition, batched=True).reshape(*batch, m, n)
    if vector_a:
        product = product[..., 0, :]
    if vector_b:
        product = product[..., 0]
    return product.reshape(out.shape)


def dot_general(a: jax.Array, b: jax.Array, dimension_numbers, *, method: str | None = None) -> jax.Array:
    """The ring contraction ``lax.dot_general(a, b, dimension_numbers)`` modulo 2^64.

    Domain: any ``uint64`` operands and any dimension numbers ``lax.dot_general`` accepts. Exact, as
    :func:`matmul` (the operands are transposed to ``[batch, m, k]`` and ``[batch, k, n]`` and multiplied
    by the same limb products). Cost as :func:`matmul` with ``k`` the product of the contracting sizes.
    The secure transform maps every ``dot_general`` it meets here.
    """
    _check_ring(a, b)
    native = functools.partial(
        lax.dot_general, dimension_numbers=dimension_numbers, preferred_element_type=RING_DTYPE
    )
    out = jax.eval_shape(native, a, b)
    decomposition = DECOMPOSITIONS[product_method(method)]
    if decomposition.float_dtype is None:
        return native(a, b)
    (a_contract, b_contract), (a_batch, b_batch) = (tuple(map(tuple, d)) for d in dimension_numbers)
    a_free = tuple(d for d in range(a.ndim) if d not in a_contract + a_batch)
    b_free = tuple(d for d in range(b.ndim) if d not in b_contract + b_batch)
    size = lambda x, dims: int(np.prod([x.shape[d] for d in dims], dtype=np.int64))  # noqa: E731
    m, k, n, batch = size(a, a_free), size(a, a_contract), size(b, b_free), size(a, a_batch)
    if out.size == 0 or k == 0:
        return jnp.zeros(out.shape, RING_DTYPE)
    a3 = jnp.transpose(a, a_batch + a_free + a_contract).reshape(batch, m, k)
    b3 = jnp.transpose(b, b_batch + b_contract + b_free).reshape(batch, k, n)
    if a_batch:
        product = _limb_matmul(a3, b3, decomposition, batched=True)
    else:
        product = _limb_matmul(a3[0], b3[0], decomposition)
    return product.reshape(out.shape)


def conv2d(
    x: jax.Array,
    w: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: str | Sequence[tuple[int, int]] = "SAME",
    *,
    method: str | None = None,
) -> jax.Array:
    """The ring convolution of an NHWC input with an HWIO kernel, modulo 2^64 (flax's layout).

    Every 2-D ring convolution of the primitives is computed here, by :func:`conv_general`: any ``uint64``
    operands, exact, cost as there.

    Args:
        x: ``uint64[N, H, W, C_in]``.
        w: ``uint64[KH, KW, C_in, C_out]``.
        strides: window strides (two ints).
        padding: ``"SAME"``, ``"VALID"`` or explicit ``((lo, hi), (lo, hi))`` zero padding.
        method: overrides :func:`product_method`.

    Returns:
        ``uint64[N, H', W', C_out]``.
    """
    return conv_general(
        x,
        w,
        window_strides=tuple(strides),
        padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        method=method,
    )


def conv_general(x: jax.Array, w: jax.Array, *, method: str | None = None, **params) -> jax.Array:
    """The ring convolution ``lax.conv_general_dilated(x, w, **params)`` modulo 2^64.

    ``params`` are those of ``lax.conv_general_dilated`` (strides, padding, dilations, dimension numbers,
    feature and batch group counts), as the secure transform finds them in a jaxpr.

    Domain: any ``uint64`` operands and any parameters ``lax.conv_general_dilated`` accepts. Exact, as
    :func:`matmul`: each output is a contraction over ``k = window size * input features per group`` terms;
    the limbs of the kernel for the pairs that count are stacked along its output features (group by
    group), so that each limb of ``x`` takes one float convolution. When ``k`` exceeds the decomposition's
    chunk (512 terms for ``"f64x22"``, 258 for ``"f32x8"``) the input features are split into chunks that
    run as extra feature groups (or, with ``batch_group_count > 1``, one after another) and are summed in
    ``uint64``. A window alone larger than the chunk (over 512 kernel positions in ``"f64x22"``) uses the
    native ``uint64`` convolution. Cost: 6 (``"f64x22"``), 10 (``"f64x16"``) or 36 (``"f32x8"``) float
    convolutions' worth of multiply-adds, in 3, 4 or 8 calls.
    """
    _check_ring(x, w)
    params = {name: v for name, v in params.items() if name not in ("precision", "preferred_element_type")}
    native = functools.partial(lax.conv_general_dilated, **params, preferred_element_type=RING_DTYPE)
    out = jax.eval_shape(native, x, w)
    decomposition = DECOMPOSITIONS[product_method(method)]
    if decomposition.float_dtype is None:
        return native(x, w)
    dimension_numbers = params.get("dimension_numbers")
    lhs_spec, rhs_spec, out_spec = lax.conv_dimension_numbers(x.shape, w.shape, dimension_numbers)
    w = jnp.transpose(w, rhs_spec)  # [O, I, *window]
    params["dimension_numbers"] = lax.ConvDimensionNumbers(lhs_spec, tuple(range(w.ndim)), out_spec)
    groups = params.get("feature_group_count", 1)
    batch_groups = params.get("batch_group_count", 1)
    n_out, n_in, window = w.shape[0], w.shape[1], int(np.prod(w.shape[2:], dtype=np.int64))
    if out.size == 0 or n_in * window == 0:
        return jnp.zeros(out.shape, RING_DTYPE)
    if window > decomposition.max_terms:
        return native(x, jnp.transpose(w, np.argsort(rhs_spec)))
    n_chunks = -(-n_in // (decomposition.max_terms // window))
    chunk = -(-n_in // n_chunks)
    x = jnp.moveaxis(x, lhs_spec[1], -1)  # features last
    params["dimension_numbers"] = lax.ConvDimensionNumbers(
        _moved_spec(lhs_spec, x.ndim), tuple(range(w.ndim)), out_spec
    )
    if n_chunks == 1:
        product = _limb_conv(x, w, decomposition, params, max(groups, batch_groups))
    elif batch_groups > 1:  # chunks one after another (the input features are not grouped)
        parts = [slice(t * chunk, (t + 1) * chunk) for t in range(n_chunks)]
        product = sum(_limb_conv(x[..., p], w[:, p], decomposition, params, batch_groups) for p in parts)
    else:  # chunks as extra feature groups: features (group, chunk, within), outputs (group, chunk, out)
        padded = n_chunks * chunk
        x = x.reshape(*x.shape[:-1], groups, n_in)
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - n_in)]).reshape(*x.shape[:-2], groups * padded)
        w = jnp.pad(w, [(0, 0), (0, padded - n_in)] + [(0, 0)] * (w.ndim - 2))
        w = w.reshape(groups, n_out // groups, n_chunks, chunk, *w.shape[2:])
        w = jnp.swapaxes(w, 1, 2).reshape(groups * n_chunks * (n_out // groups), chunk, *w.shape[4:])
        params["feature_group_count"] = groups * n_chunks
        product = _limb_conv(x, w, decomposition, params, groups * n_chunks)
        product = product.reshape(*product.shape[:-1], groups, n_chunks, n_out // groups).sum(axis=-2)
        product = product.reshape(*product.shape[:-2], n_out)
    return jnp.moveaxis(product, -1, out_spec[1])


def _moved_spec(lhs_spec: Sequence[int], ndim: int) -> tuple[int, ...]:
    """``lhs_spec`` after the feature axis ``lhs_spec[1]`` has been moved to the last position."""
    feature = lhs_spec[1]
    relabel = lambda d: ndim - 1 if d == feature else (d - 1 if d > feature else d)  # noqa: E731
    return tuple(relabel(d) for d in lhs_spec)


def _limbs(x: jax.Array, decomposition: Decomposition, axis: int = 0) -> jax.Array:
    """The limbs of ``x``, exact in the decomposition's float type, stacked along a new ``axis``."""
    parts = []
    for offset, width in zip(decomposition.offsets, decomposition.widths):
        limb = lax.shift_right_logical(x, jnp.asarray(offset, RING_DTYPE))
        limb = limb & jnp.asarray((1 << width) - 1, RING_DTYPE)
        # Through uint32 (every limb is below 2^32): its conversion to float is cheaper than uint64's.
        parts.append(limb.astype(jnp.uint32).astype(decomposition.float_dtype))
    return jnp.stack(parts, axis=axis)


def _to_ring(x: jax.Array) -> jax.Array:
    """An exact float holding an integer in [0, 2^p], p <= 53, as a ring element."""
    integer = jnp.int64 if x.dtype == jnp.float64 else jnp.int32
    return x.astype(integer).astype(RING_DTYPE)


def _limb_matmul(a: jax.Array, b: jax.Array, decomposition: Decomposition, batched: bool = False):
    """``[(B,) m, k] @ [(B,) k, n]`` modulo 2^64 through limb products (see the section comment)."""
    nb = int(batched)
    k = a.shape[-1]
    if k > decomposition.max_terms:  # chunks of k become a leading batch dimension, summed in uint64
        n_chunks = -(-k // decomposition.max_terms)
        chunk = -(-k // n_chunks)
        a = jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, n_chunks * chunk - k)])
        b = jnp.pad(b, [(0, 0)] * (b.ndim - 2) + [(0, n_chunks * chunk - k), (0, 0)])
        a = jnp.moveaxis(a.reshape(*a.shape[:-1], n_chunks, chunk), -2, 0)
        b = jnp.moveaxis(b.reshape(*b.shape[:-2], n_chunks, chunk, b.shape[-1]), -3, 0)
        if batched:
            a, b = a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:])
        product = _limb_matmul(a, b, decomposition, batched=True)
        total = product.reshape(n_chunks, -1, *product.shape[1:]).sum(axis=0)  # [B or 1, m, n]
        return total if batched else total[0]
    m, n = a.shape[-2], b.shape[-1]
    a_limbs = _limbs(a, decomposition, axis=-3)  # [(B,) L, m, k]
    b_limbs = _limbs(b, decomposition, axis=0)  # [L, (B,) k, n]
    offsets = decomposition.offsets
    dims = (((nb + 1,), (nb,)), ((0,), (0,)) if batched else ((), ()))
    total = None
    for j in range(len(offsets)):
        rows = [i for i, jj in decomposition.pairs if jj == j]  # a prefix 0, ..., S - 1
        lhs = a_limbs[..., : len(rows), :, :].reshape(*a.shape[:-2], len(rows) * m, k)
        product = lax.dot_general(
            lhs,
            b_limbs[j],
            dims,
            precision=decomposition.precision,
            preferred_element_type=decomposition.float_dtype,
        )
        product = _to_ring(product.reshape(*a.shape[:-2], len(rows), m, n))
        for i in rows:
            term = lax.shift_left(product[..., i, :, :], jnp.asarray(offsets[i] + offsets[j], RING_DTYPE))
            total = term if total is None else total + term
    return total


def _limb_conv(x, w, decomposition: Decomposition, params: dict, out_groups: int) -> jax.Array:
    """The convolution modulo 2^64 of ``x`` (features last) and ``w`` ([O, I, *window]), within one chunk.

    Returns the result with its output features last, in the order of ``w``'s output features.
    """
    n_out = w.shape[0]
    per_group = n_out // out_groups
    x_limbs = _limbs(x, decomposition, axis=0)
    w_limbs = _limbs(w, decomposition, axis=0)  # [L, O, I, *window]
    offsets = decomposition.offsets
    out_feature = params["dimension_numbers"].out_spec[1]
    total = None
    for i in range(len(offsets)):
        cols = [j for ii, j in decomposition.pairs if ii == i]  # a prefix 0, ..., S - 1
        s = len(cols)
        # Kernel limbs stacked along the output features, inside each output group: (group, s, per_group).
        stacked = w_limbs[:s].reshape(s, out_groups, per_group, *w.shape[1:])
        stacked = jnp.swapaxes(stacked, 0, 1).reshape(out_groups * s * per_group, *w.shape[1:])
        product = lax.conv_general_dilated(
            x_limbs[i], stacked, **params, precision=decomposition.precision,
            preferred_element_type=decomposition.float_dtype,
        )  # fmt: skip
        product = jnp.moveaxis(_to_ring(product), out_feature, -1)
        product = product.reshape(*product.shape[:-1], out_groups, s, per_group)
        for j in cols:
            term = lax.shift_left(product[..., j, :], jnp.asarray(offsets[i] + offsets[j], RING_DTYPE))
            total = term if total is None else total + term
    return total.reshape(*total.shape[:-2], n_out)


def _check_ring(*arrays: jax.Array) -> None:
    for a in arrays:
        if a.dtype != RING_DTYPE:
            raise TypeError(f"ring products take uint64 ring elements, got {a.dtype}")
