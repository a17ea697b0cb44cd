"""sjax: secure multi-party computation for JAX.

Secret-shared arrays are pytrees, protocols are pure functions of (shares, key), and whole programs compile
through XLA. Importing sjax turns on JAX's 64-bit mode (``jax_enable_x64``): ring elements are ``uint64``.
"""

import jax

# Ring elements are uint64; without 64-bit mode JAX would silently narrow them to 32 bits.
jax.config.update("jax_enable_x64", True)

from sjax import comm as comm  # noqa: E402
from sjax import parallel as parallel  # noqa: E402
from sjax import randomness as randomness  # noqa: E402
from sjax import ring as ring  # noqa: E402
from sjax.accounting import LAN as LAN  # noqa: E402
from sjax.accounting import WAN as WAN  # noqa: E402
from sjax.accounting import Cost as Cost  # noqa: E402
from sjax.accounting import NetworkModel as NetworkModel  # noqa: E402
from sjax.accounting import cost as cost  # noqa: E402
from sjax.primitives import conv2d as conv2d  # noqa: E402
from sjax.primitives import matmul as matmul  # noqa: E402
from sjax.primitives import mean as mean  # noqa: E402
from sjax.primitives import mul as mul  # noqa: E402
from sjax.primitives import reveal as reveal  # noqa: E402
from sjax.primitives import share as share  # noqa: E402
from sjax.primitives import share_bits as share_bits  # noqa: E402
from sjax.primitives import square as square  # noqa: E402
from sjax.primitives import truncate as truncate  # noqa: E402
from sjax.shares import ArithShare as ArithShare  # noqa: E402
from sjax.shares import BinShare as BinShare  # noqa: E402
from sjax.shares import concatenate as concatenate  # noqa: E402
from sjax.shares import stack as stack  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ArithShare",
    "BinShare",
    "Cost",
    "LAN",
    "NetworkModel",
    "WAN",
    "comm",
    "concatenate",
    "conv2d",
    "cost",
    "matmul",
    "mean",
    "mul",
    "parallel",
    "randomness",
    "reveal",
    "ring",
    "share",
    "share_bits",
    "square",
    "stack",
    "truncate",
]
