"""Protocols, one topic per module. Each public function validates its inputs and maps an SPMD body
(one party's view, the ``*_body`` functions) over the parties with a runner from :mod:`sjax.parallel`."""

from sjax.primitives.arith import conv2d as conv2d
from sjax.primitives.arith import matmul as matmul
from sjax.primitives.arith import mean as mean
from sjax.primitives.arith import mul as mul
from sjax.primitives.arith import square as square
from sjax.primitives.sharing import reveal as reveal
from sjax.primitives.sharing import share as share
from sjax.primitives.sharing import share_bits as share_bits
from sjax.primitives.truncation import truncate as truncate

__all__ = ["conv2d", "matmul", "mean", "mul", "reveal", "share", "share_bits", "square", "truncate"]
