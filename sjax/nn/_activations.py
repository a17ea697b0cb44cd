"""Activations for networks: the primitives re-exported (``relu``, ``sigmoid``, ``tanh``, ``silu``,
``softmax``, ``log_softmax``), :func:`gelu` with flax's tanh approximation as an option, and
:func:`softplus`.

Every function takes the key as its last positional argument or as ``key=``.

Leakage: none.
"""

from __future__ import annotations

import math

import jax

from sjax import randomness
from sjax.primitives.activations import gelu as _gelu_exact
from sjax.primitives.activations import sigmoid as sigmoid
from sjax.primitives.activations import silu as silu
from sjax.primitives.activations import tanh as tanh
from sjax.primitives.arith import mul, square
from sjax.primitives.compare import relu as relu
from sjax.primitives.exponential import exp
from sjax.primitives.normalize import log
from sjax.primitives.softmax import log_softmax as log_softmax
from sjax.primitives.softmax import softmax as softmax
from sjax.primitives.truncation import truncate
from sjax.shares import ArithShare

__all__ = ["relu", "gelu", "sigmoid", "silu", "tanh", "softplus", "softmax", "log_softmax"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_FACTOR_BITS = 24


def gelu(x: ArithShare, key: jax.Array, approximate: bool = False) -> ArithShare:
    """GELU: exact ``x * Phi(x)`` by default, or flax's/jax's default tanh approximation.

    ``approximate=False`` is :func:`sjax.gelu`, ``jax.nn.gelu(x, approximate=False)``. Note that
    ``flax.linen.gelu`` and ``jax.nn.gelu`` default to ``approximate=True``:
    ``x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x**3)))``; pass ``approximate=True`` to match a
    model trained with it (the two forms differ by up to about 5e-4).

    Domain: ``|x| < 2**(30 - f)`` exact form; for the approximation ``|x|**3`` must stay in the product
    range and ``0.0357 |x|**3`` below ``2**(38 - f)``: ``|x| < 480`` for 16 bits.
    Error: below ``(|x| + 1) 2**-f`` (exact form); ``(|x| + 2) 2**-f`` for the approximation, from the
    truncations of ``x**2``, ``x**3`` and the scaling, amplified by the slope of tanh (at most 1).
    Cost (measured with :func:`sjax.cost`, sizes a multiple of 64): exact, 26 rounds and
    ``776.375 * (n - 1)`` bytes per element; approximate, 27 rounds and ``444 * (n - 1)`` bytes per element.
    """
    if not approximate:
        return _gelu_exact(x, key)
    if not isinstance(x, ArithShare):
        raise TypeError(f"gelu takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    square_key, cube_key, linear_key, cubic_key, tanh_key, half_key, product_key = randomness.split(key, 7)
    cube = mul(square(x, square_key), x, cube_key)
    inner = _scale(x, _SQRT_2_OVER_PI, linear_key) + _scale(cube, _SQRT_2_OVER_PI * 0.044715, cubic_key)
    # x / 2 runs beside the cube and tanh, so the end costs one product: x / 2 * (1 + tanh(inner)).
    return mul(_scale(x, 0.5, half_key), tanh(inner, tanh_key) + 1.0, product_key)


def _scale(x: ArithShare, factor: float, key: jax.Array) -> ArithShare:
    """``x * factor`` for a public constant held as an exact integer at ``_FACTOR_BITS`` bits, then one
    truncation: the constant's relative error is ``2**-25`` rather than ``2**-(f + 1) / factor``."""
    return truncate(x * int(round(factor * 2**_FACTOR_BITS)), key, bits=_FACTOR_BITS)


def softplus(x: ArithShare, key: jax.Array) -> ArithShare:
    """``log(1 + e^x)``, computed stably as ``max(x, 0) + log(1 + e^-|x|)`` (``jax.nn.softplus``).

    ``|x| = 2 max(x, 0) - x`` is local once :func:`sjax.relu` has run; ``e^-|x|`` lies in ``(0, 1]``
    (:func:`sjax.exp`, 0 below -11.09 where it is under the resolution) and :func:`sjax.log` of
    ``1 + e^-|x|`` works on ``[1, 2]``.

    Domain: every representable ``x``. Error: absolute, below ``3 * 2**-f`` (exp's, then log's and
    the final rounding).
    Cost (measured with :func:`sjax.cost`, sizes a multiple of 64): 31 rounds; each party sends
    ``546.125 * (n - 1)`` bytes per element.
    """
    if not isinstance(x, ArithShare):
        raise TypeError(f"softplus takes an ArithShare, got {type(x).__name__}")
    key = randomness.check_key(key)
    relu_key, exp_key, log_key = randomness.split(key, 3)
    positive = relu(x, relu_key)
    magnitude = positive * 2 - x
    return positive + log(exp(-magnitude, exp_key) + 1.0, log_key)
