"""Arithmetic in the ring Z_2^64 and the fixed-point encoding of reals into it.

Ring elements are ``uint64`` arrays; addition, subtraction and multiplication wrap around modulo 2^64, which
is exactly the ring. A real ``x`` is encoded as ``round(x * 2**frac_bits) mod 2**64`` and read back as the
two's-complement integer divided by ``2**frac_bits``.

Every ring matrix product and convolution in sjax goes through :func:`matmul` and :func:`conv2d`, so that
they can be made fast in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """The ring matrix product ``a @ b`` modulo 2^64, with ``jnp.matmul`` semantics (batching, 1-D operands).

    Every ring matrix product in sjax is computed here. Exact for all inputs.
    """
    _check_ring(a, b)
    return jnp.matmul(a, b, preferred_element_type=RING_DTYPE)


def conv2d(
    x: jax.Array,
    w: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: str | Sequence[tuple[int, int]] = "SAME",
) -> jax.Array:
    """The ring convolution of an NHWC input with an HWIO kernel, modulo 2^64 (flax's layout).

    Every ring convolution in sjax is computed here. Exact for all inputs.

    Args:
        x: ``uint64[N, H, W, C_in]``.
        w: ``uint64[KH, KW, C_in, C_out]``.
        strides: window strides (two ints).
        padding: ``"SAME"``, ``"VALID"`` or explicit ``((lo, hi), (lo, hi))`` zero padding.

    Returns:
        ``uint64[N, H', W', C_out]``.
    """
    _check_ring(x, w)
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(strides),
        padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        preferred_element_type=RING_DTYPE,
    )


def dot_general(a: jax.Array, b: jax.Array, dimension_numbers) -> jax.Array:
    """The ring contraction ``lax.dot_general(a, b, dimension_numbers)`` modulo 2^64. Exact for all inputs.

    The secure transform maps every ``dot_general`` it meets here, so a faster ring product serves it too.
    """
    _check_ring(a, b)
    return lax.dot_general(a, b, dimension_numbers, preferred_element_type=RING_DTYPE)


def conv_general(x: jax.Array, w: jax.Array, **params) -> jax.Array:
    """The ring convolution ``lax.conv_general_dilated(x, w, **params)`` modulo 2^64. Exact for all inputs.

    ``params`` are those of ``lax.conv_general_dilated`` (strides, padding, dilations, dimension numbers,
    group counts), as the secure transform finds them in a jaxpr.
    """
    _check_ring(x, w)
    return lax.conv_general_dilated(x, w, **params, preferred_element_type=RING_DTYPE)


def _check_ring(*arrays: jax.Array) -> None:
    for a in arrays:
        if a.dtype != RING_DTYPE:
            raise TypeError(f"ring products take uint64 ring elements, got {a.dtype}")
