"""Protocols, one topic per module. Each public function validates its inputs and maps an SPMD body
(one party's view, the ``*_body`` functions) over the parties with a runner from :mod:`sjax.parallel`."""

from sjax.primitives.activations import erf as erf
from sjax.primitives.activations import gelu as gelu
from sjax.primitives.activations import sigmoid as sigmoid
from sjax.primitives.activations import silu as silu
from sjax.primitives.activations import tanh as tanh
from sjax.primitives.arith import conv2d as conv2d
from sjax.primitives.binary import a2b as a2b
from sjax.primitives.binary import b2a_bits as b2a_bits
from sjax.primitives.binary import bitwise_and as bitwise_and
from sjax.primitives.binary import msb as msb
from sjax.primitives.compare import abs as abs  # noqa: A004
from sjax.primitives.compare import eq as eq
from sjax.primitives.compare import ge as ge
from sjax.primitives.compare import gt as gt
from sjax.primitives.compare import le as le
from sjax.primitives.compare import lt as lt
from sjax.primitives.compare import maximum as maximum
from sjax.primitives.compare import minimum as minimum
from sjax.primitives.compare import ne as ne
from sjax.primitives.compare import relu as relu
from sjax.primitives.compare import sign as sign
from sjax.primitives.compare import where as where
from sjax.primitives.exponential import exp as exp
from sjax.primitives.normalize import div as div
from sjax.primitives.normalize import log as log
from sjax.primitives.normalize import reciprocal as reciprocal
from sjax.primitives.normalize import rsqrt as rsqrt
from sjax.primitives.normalize import sqrt as sqrt
from sjax.primitives.order import argmax as argmax
from sjax.primitives.order import argmin as argmin
from sjax.primitives.order import avg_pool2d as avg_pool2d
from sjax.primitives.order import max as max  # noqa: A004
from sjax.primitives.order import max_pool2d as max_pool2d
from sjax.primitives.order import min as min  # noqa: A004
from sjax.primitives.order import sort as sort
from sjax.primitives.order import top_k as top_k
from sjax.primitives.arith import matmul as matmul
from sjax.primitives.arith import mean as mean
from sjax.primitives.arith import mul as mul
from sjax.primitives.arith import square as square
from sjax.primitives.power import pow as pow  # noqa: A004
from sjax.primitives.sharing import reveal as reveal
from sjax.primitives.softmax import layer_norm as layer_norm
from sjax.primitives.softmax import log_softmax as log_softmax
from sjax.primitives.softmax import softmax as softmax
from sjax.primitives.sharing import share as share
from sjax.primitives.sharing import share_bits as share_bits
from sjax.primitives.sharing import share_from as share_from
from sjax.primitives.trig import cos as cos
from sjax.primitives.trig import sin as sin
from sjax.primitives.truncation import truncate as truncate

__all__ = [
    "pow",
    "sin",
    "cos",
    "softmax",
    "log_softmax",
    "layer_norm",
    "tanh",
    "silu",
    "sigmoid",
    "gelu",
    "erf",
    "a2b",
    "abs",
    "argmax",
    "argmin",
    "avg_pool2d",
    "b2a_bits",
    "bitwise_and",
    "conv2d",
    "div",
    "eq",
    "exp",
    "ge",
    "gt",
    "le",
    "log",
    "lt",
    "matmul",
    "max",
    "max_pool2d",
    "maximum",
    "mean",
    "min",
    "minimum",
    "msb",
    "mul",
    "ne",
    "reciprocal",
    "relu",
    "reveal",
    "rsqrt",
    "share",
    "share_bits",
    "share_from",
    "sign",
    "sort",
    "sqrt",
    "square",
    "top_k",
    "truncate",
    "where",
]
