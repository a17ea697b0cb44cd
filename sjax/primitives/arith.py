"""Products: elementwise, square, matrix and convolution, of two secrets or of a secret and a public value.

Secret × secret uses the dealer's correlated randomness (Beaver, 1991): for a bilinear map ``*`` and a
triple ``(a, b, c = a * b)`` the parties open ``d = x - a`` and ``e = y - b`` and compute
``x * y = c + d * b + a * e + d * e`` locally. With a matrix triple (``c = a @ b``) or a convolution triple
(``c = conv(a, b)``) a matrix product opens ``O(mk + kn)`` values, not ``O(mkn)``. The product of two
fixed-point values carries ``2 * frac_bits`` fractional bits and is then truncated (:func:`sjax.truncate`).

Secret × public is local: each party multiplies its share; a fractional public value is encoded with
``frac_bits`` bits, plus the leading zero bits of a factor below 1 (:func:`sjax.shares.public_factor_bits`:
``1 / 569`` keeps its significant digits), and the product truncated by as many (1 round); an integer
public value needs no truncation.

Leakage: none beyond shapes; the opened ``d`` and ``e`` are uniform because ``a`` and ``b`` are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, randomness, ring
from sjax import parallel
from sjax.primitives.truncation import truncate_body
from sjax.shares import ArithShare, encode_public_factor, local_matmul, per_party

__all__ = [
    "mul",
    "square",
    "matmul",
    "conv2d",
    "mean",
    "bilinear",
    "bilinear_body",
    "square_body",
    "scale_body",
]

Bilinear = Callable[[jax.Array, jax.Array], jax.Array]


# -- SPMD bodies ------------------------------------------------------------------------------------


def bilinear_body(
    x: jax.Array,
    y: jax.Array,
    key: jax.Array,
    *,
    product: Bilinear,
    correlation: str,
    count: int,
    frac_bits: int,
) -> jax.Array:
    """One party's share of ``product(x, y)`` for secrets ``x`` and ``y``, truncated by ``frac_bits``.

    Cost: 2 rounds (1 without truncation); each party sends ``8 * (n_parties - 1) * (size(x) + size(y))``
    bytes to open ``d`` and ``e``, then ``8 * (n_parties - 1) * size(out)`` to truncate.
    """
    if frac_bits:
        (a, b, c), truncation = randomness.beaver_with_truncation(
            key, x.shape, y.shape, product, frac_bits, name=correlation, count=count
        )
    else:
        (a, b, c), truncation = randomness.beaver_triple(
            key, x.shape, y.shape, product, name=correlation, count=count
        ), None
    d, e = comm.open_shares(x - a, y - b)
    # c + d*b + a*e + d*e, with party 0 alone adding the public d*e; bilinearity folds it into one product.
    b_plus = b + jnp.where(comm.is_first_party(), e, jnp.uint64(0))
    z = c + product(d, b_plus) + product(a, e)
    return truncate_body(z, None, bits=frac_bits, triple=truncation)


def square_body(x: jax.Array, key: jax.Array, *, frac_bits: int) -> jax.Array:
    """One party's share of ``x * x``: ``c + d * (2a + d)`` with ``d = x - a`` opened, then truncated.

    Cost: 2 rounds (1 without truncation); ``8 * (n_parties - 1) * size`` bytes each round.
    """
    pair_key, truncation_key = randomness.split(key, 2)
    a, c = randomness.square_pair(pair_key, x.shape)
    (d,) = comm.open_shares(x - a)
    z = c + d * (jnp.uint64(2) * a + jnp.where(comm.is_first_party(), d, jnp.uint64(0)))
    return truncate_body(z, truncation_key, bits=frac_bits)


def scale_body(z: jax.Array, key: jax.Array, *, bits: int) -> jax.Array:
    """Truncates a local product with a public value (kept apart so every runner maps the same body)."""
    return truncate_body(z, key, bits=bits)


# -- helpers -----------------------------------------------------------------------------------------


def _shared_pair(x, y, op: str) -> tuple[ArithShare | None, ArithShare | None]:
    x_shared, y_shared = isinstance(x, ArithShare), isinstance(y, ArithShare)
    if not (x_shared or y_shared):
        raise TypeError(f"{op} needs at least one ArithShare, got {type(x).__name__} and {type(y).__name__}")
    if x_shared and y_shared:
        x._check_compatible(y, op)
    return (x if x_shared else None), (y if y_shared else None)


def _size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _run_bilinear(x: ArithShare, y: ArithShare, key, product: Bilinear, correlation: str, count: int):
    body = functools.partial(
        bilinear_body, product=product, correlation=correlation, count=count, frac_bits=x.frac_bits
    )
    return ArithShare(parallel.run(body, (x.shares, y.shares), (key,)), frac_bits=x.frac_bits)


def _finish_public(shares: jax.Array, shift: int, key, frac_bits: int) -> ArithShare:
    """Truncates a share-times-public product by ``shift``, the public factor's fractional bits (if any)."""
    if not shift:
        return ArithShare(shares, frac_bits=frac_bits)
    body = functools.partial(scale_body, bits=shift)
    return ArithShare(parallel.run(body, (shares,), (key,)), frac_bits=frac_bits)


# -- public API --------------------------------------------------------------------------------------


def mul(x, y, key: jax.Array) -> ArithShare:
    """Elementwise product with numpy broadcasting; either operand may be public.

    Secret × secret: one Beaver triple per output element, then a truncation.
    Secret × public: local; a floating public value ``c`` is encoded with ``frac_bits + g`` bits, ``g`` the
    leading zero bits of ``max|c|`` when it is below 1 (:func:`sjax.shares.public_factor_bits`), so its
    rounding error is at most ``2**-(frac_bits + 1)`` of ``max|c|``, and the product is truncated by as
    many bits; an integer or boolean public value multiplies exactly with no truncation and no
    communication.

    Domain: ``|x * y| < 2**(62 - 2 * frac_bits)`` (about 1.07e9 for 16 bits) for the truncation; for a
    public ``y`` below 1, ``|x| < 2**(62 - 2 * frac_bits)``.
    Error: below ``2**-frac_bits`` for secret × secret (stochastic rounding of the truncation).

    Cost (secret × secret): 2 rounds; each party sends ``8 * (n - 1) * (size(x) + size(y) + size(out))``
    bytes; the dealer sends party 0 ``24 * size(out)`` bytes (triple and truncation corrections).
    Cost (× fractional public): 1 round, ``8 * (n - 1) * size(out)`` bytes. (× integer public): none.

    Args:
        x, y: :class:`ArithShare` or public arrays (at least one share).
        key: a PRNG key, used once.
    """
    x_share, y_share = _shared_pair(x, y, "mul")
    key = randomness.check_key(key)
    if x_share is not None and y_share is not None:
        out_shape = _broadcast(x.shape, y.shape)
        return _run_bilinear(x, y, key, jnp.multiply, "beaver_triple", _size(out_shape))
    share, public = (x, y) if x_share is not None else (y, x)
    encoded, shift = encode_public_factor(public, share.frac_bits, "mul")
    out_shape = _broadcast(share.shape, encoded.shape)
    lifted = share.broadcast_to(out_shape).shares if share.shape != out_shape else share.shares
    return _finish_public(lifted * encoded, shift, key, share.frac_bits)


def bilinear(x, y, key: jax.Array, product: Bilinear, *, correlation: str = "bilinear_triple") -> ArithShare:
    """``product(x, y)`` for any ring-bilinear ``product`` (a contraction, a convolution); either may be public.

    This is what :func:`mul`, :func:`matmul` and :func:`conv2d` are made of, open to any bilinear map on
    ``uint64`` ring elements (``ring.dot_general``, ``ring.conv_general`` with bound parameters). The
    secure transform maps ``dot_general`` and ``conv_general_dilated`` equations through it.

    Secret × secret: one dealer triple ``(A, B, product(A, B))``, open ``x - A`` and ``y - B``, truncate.
    Secret × public: local, then truncated when the public operand is floating.

    Domain and error as :func:`matmul`. Cost (secret × secret): 2 rounds; each party sends
    ``8 * (n - 1) * (size(x) + size(y) + size(out))`` bytes; the dealer sends party 0 ``24 * size(out)``.

    Args:
        x, y: :class:`ArithShare` or public arrays (at least one share).
        key: a PRNG key, used once.
        product: a bilinear map of two ``uint64`` arrays, exact modulo 2^64.
        correlation: the name under which :func:`sjax.cost` counts the dealer's triples.
    """
    x_share, y_share = _shared_pair(x, y, "bilinear")
    key = randomness.check_key(key)
    if x_share is not None and y_share is not None:
        return _run_bilinear(x, y, key, product, correlation, 1)
    share = x_share if x_share is not None else y_share
    encoded, shift = encode_public_factor(y if x_share is not None else x, share.frac_bits, "bilinear")
    if x_share is not None:
        local = per_party(lambda s, e: product(s, e), share.shares, encoded, in_axes=(0, None))
    else:
        local = per_party(lambda s, e: product(e, s), share.shares, encoded, in_axes=(0, None))
    return _finish_public(local, shift, key, share.frac_bits)


def square(x: ArithShare, key: jax.Array) -> ArithShare:
    """Elementwise ``x * x`` with one square pair ``(a, a^2)`` per element: half the traffic of ``mul(x, x)``.

    Domain: ``|x| < 2**(31 - frac_bits)``. Error: below ``2**-frac_bits``.
    Cost: 2 rounds; each party sends ``16 * (n - 1) * size`` bytes; the dealer sends ``24 * size`` bytes.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"square takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    body = functools.partial(square_body, frac_bits=x.frac_bits)
    return ArithShare(parallel.run(body, (x.shares,), (key,)), frac_bits=x.frac_bits)


def matmul(x, y, key: jax.Array) -> ArithShare:
    """Matrix product with ``jnp.matmul`` semantics (1-D operands, batch dimensions that broadcast).

    Secret × secret: one matrix triple ``(A, B, A @ B)``, so the parties open ``size(x) + size(y)`` values
    rather than one per multiplication, then truncate. Secret × public: local, then truncated when the
    public matrix is floating.

    Domain: every output's sum of products below ``2**(62 - 2 * frac_bits)`` in magnitude (for a public
    matrix ``c`` below 1, ``2**(62 - 2 * frac_bits - g)``, see :func:`mul`).
    Error: below ``2**-frac_bits`` per output element, plus, for a public floating matrix, its encoding
    error (``2**-(frac_bits + 1)`` of its largest entry, per entry) times the secret.

    Cost (secret × secret, ``[m, k] @ [k, p]``): 2 rounds; each party sends
    ``8 * (n - 1) * (m*k + k*p + m*p)`` bytes; the dealer sends party 0 ``24 * m * p`` bytes.
    Cost (× fractional public): 1 round, ``8 * (n - 1) * m * p`` bytes. (× integer public): none.
    """
    x_share, y_share = _shared_pair(x, y, "matmul")
    key = randomness.check_key(key)
    if x_share is not None and y_share is not None:
        _matmul_shape(x.shape, y.shape)
        return _run_bilinear(x, y, key, ring.matmul, "matmul_triple", 1)
    share, public = (x, y) if x_share is not None else (y, x)
    encoded, shift = encode_public_factor(public, share.frac_bits, "matmul")
    share_on_left = x_share is not None
    if share_on_left:
        _matmul_shape(share.shape, encoded.shape)
    else:
        _matmul_shape(encoded.shape, share.shape)
    product = local_matmul(share.shares, encoded, share_on_left=share_on_left)
    return _finish_public(product, shift, key, share.frac_bits)


def conv2d(
    x,
    w,
    key: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: str | Sequence[tuple[int, int]] = "SAME",
) -> ArithShare:
    """2-D convolution in flax's layout: NHWC input, HWIO kernel; either operand may be public.

    Secret × secret: one convolution triple ``(A, B, conv(A, B))``, so the parties open the input and the
    kernel once each, then truncate. Secret × public: local, then truncated when the public operand is
    floating.

    Domain and error as :func:`matmul`, with the sum over each window.
    Cost (secret × secret): 2 rounds; each party sends ``8 * (n - 1) * (size(x) + size(w) + size(out))``
    bytes; the dealer sends party 0 ``24 * size(out)`` bytes.

    Args:
        x: ``[N, H, W, C_in]`` input.
        w: ``[KH, KW, C_in, C_out]`` kernel.
        key: a PRNG key, used once.
        strides: two positive ints.
        padding: ``"SAME"``, ``"VALID"`` or ``((top, bottom), (left, right))``.
    """
    x_share, w_share = _shared_pair(x, w, "conv2d")
    key = randomness.check_key(key)
    strides, padding = _check_conv_args(strides, padding)
    product = functools.partial(ring.conv2d, strides=strides, padding=padding)
    if x_share is not None and w_share is not None:
        _conv_shape(x.shape, w.shape, product)
        return _run_bilinear(x, w, key, product, "conv_triple", 1)
    share = x_share if x_share is not None else w_share
    encoded, shift = encode_public_factor(w if x_share is not None else x, share.frac_bits, "conv2d")
    if x_share is not None:
        _conv_shape(share.shape, encoded.shape, product)
        local = per_party(lambda s, e: product(s, e), share.shares, encoded, in_axes=(0, None))
    else:
        _conv_shape(encoded.shape, share.shape, product)
        local = per_party(lambda s, e: product(e, s), share.shares, encoded, in_axes=(0, None))
    return _finish_public(local, shift, key, share.frac_bits)


def mean(x: ArithShare, key: jax.Array, axis: int | Sequence[int] | None = None, keepdims: bool = False):
    """Mean over ``axis`` (all axes by default): a local sum, then one multiply-and-truncate by ``1/count``.

    The public factor ``2**g / count`` is encoded with ``g = frac_bits + ceil(log2(count))`` bits, so its
    relative rounding error is at most ``2**-(frac_bits + 1)``; the truncation by ``g`` bits then needs
    ``|mean| < 2**(62 - 2 * frac_bits - ceil(log2(count)))``.

    Error: ``|mean| * 2**-(frac_bits + 1) + 2**-frac_bits``.
    Cost: 1 round; each party sends ``8 * (n - 1) * size(out)`` bytes (none when ``count == 1``).
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"mean takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    total = x.sum(axis=axis, keepdims=keepdims)
    count = x.size // max(total.size, 1) if x.size else 0
    if count <= 1:
        return total
    extra_bits = int(np.ceil(np.log2(count)))
    bits = x.frac_bits + extra_bits
    factor = jnp.uint64(round(2**bits / count))
    body = functools.partial(scale_body, bits=bits)
    return ArithShare(parallel.run(body, (total.shares * factor,), (key,)), frac_bits=x.frac_bits)


# -- shape checks with clear errors ------------------------------------------------------------------


def _broadcast(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ValueError(f"shapes {tuple(a)} and {tuple(b)} do not broadcast together") from None


def _matmul_shape(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"matmul needs operands of rank 1 or more, got shapes {tuple(a)} and {tuple(b)}")
    try:
        return jax.eval_shape(
            jnp.matmul, jax.ShapeDtypeStruct(tuple(a), jnp.int64), jax.ShapeDtypeStruct(tuple(b), jnp.int64)
        ).shape
    except (TypeError, ValueError):
        raise ValueError(f"matmul shapes {tuple(a)} and {tuple(b)} do not match") from None


def _check_conv_args(strides, padding):
    if isinstance(strides, (int, np.integer)) and not isinstance(strides, bool):
        strides = (strides, strides)
    try:
        strides = tuple(strides)
    except TypeError:
        raise TypeError(f"strides must be an int or two ints, got {strides!r}") from None
    if len(strides) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in strides):
        raise ValueError(f"strides must be two positive ints, got {strides}")
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be 'SAME', 'VALID' or explicit pairs, got {padding!r}")
    else:
        try:
            padding = tuple(tuple(int(p) for p in pair) for pair in padding)
        except TypeError:
            raise TypeError(
                f"padding must be 'SAME', 'VALID' or ((top, bottom), (left, right)), got {padding!r}"
            ) from None
        if len(padding) != 2 or any(len(pair) != 2 or min(pair) < 0 for pair in padding):
            raise ValueError(f"explicit padding must be two (low, high) pairs of non-negative ints, got {padding}")
    return tuple(int(s) for s in strides), padding


def _conv_shape(x_shape, w_shape, product) -> tuple[int, ...]:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"conv2d takes an NHWC input and an HWIO kernel, got shapes {x_shape} and {w_shape}")
    if x_shape[3] != w_shape[2]:
        raise ValueError(
            f"conv2d input has {x_shape[3]} channels but the kernel expects {w_shape[2]} (shapes {x_shape}, "
            f"{w_shape})"
        )
    try:
        return jax.eval_shape(
            product,
            jax.ShapeDtypeStruct(tuple(x_shape), ring.RING_DTYPE),
            jax.ShapeDtypeStruct(tuple(w_shape), ring.RING_DTYPE),
        ).shape
    except (TypeError, ValueError) as error:
        raise ValueError(f"conv2d shapes {x_shape} and {w_shape} do not fit: {error}") from None
