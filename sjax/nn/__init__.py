"""Neural-network building blocks on secret shares: parameters, layers, activations and losses.

Functional, in flax's layouts and conventions, and usable without any transform: each function is a thin
composition of :mod:`sjax` primitives and takes its key as ``key=`` (used once; split it locally with
``jax.random.split`` for several calls).

* Parameters: :func:`share_params`, :func:`reveal_params` (pytrees such as flax ``params``).
* Layers: :func:`dense`, :func:`conv`, :func:`max_pool`, :func:`avg_pool`, :func:`batch_norm` (inference),
  :func:`layer_norm`, :func:`dropout` (public mask).
* Activations: :func:`relu`, :func:`gelu`, :func:`sigmoid`, :func:`silu`, :func:`tanh`, :func:`softplus`,
  :func:`softmax`, :func:`log_softmax`.
* Losses (scalar shares): :func:`mean_squared_error`, :func:`binary_cross_entropy_with_logits`,
  :func:`softmax_cross_entropy`.

Each docstring gives the domain, the error and the cost in rounds and bytes measured with
:func:`sjax.cost`.
"""

from sjax.nn._activations import gelu as gelu
from sjax.nn._activations import log_softmax as log_softmax
from sjax.nn._activations import relu as relu
from sjax.nn._activations import sigmoid as sigmoid
from sjax.nn._activations import silu as silu
from sjax.nn._activations import softmax as softmax
from sjax.nn._activations import softplus as softplus
from sjax.nn._activations import tanh as tanh
from sjax.nn._dropout import dropout as dropout
from sjax.nn._linear import conv as conv
from sjax.nn._linear import dense as dense
from sjax.nn._losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from sjax.nn._losses import mean_squared_error as mean_squared_error
from sjax.nn._losses import softmax_cross_entropy as softmax_cross_entropy
from sjax.nn._normalization import batch_norm as batch_norm
from sjax.nn._normalization import layer_norm as layer_norm
from sjax.nn._params import reveal_params as reveal_params
from sjax.nn._params import share_params as share_params
from sjax.nn._pooling import avg_pool as avg_pool
from sjax.nn._pooling import max_pool as max_pool

__all__ = [
    "avg_pool",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv",
    "dense",
    "dropout",
    "gelu",
    "layer_norm",
    "log_softmax",
    "max_pool",
    "mean_squared_error",
    "relu",
    "reveal_params",
    "share_params",
    "sigmoid",
    "silu",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
    "tanh",
]
