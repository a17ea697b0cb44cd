"""sjax: secure multi-party computation for JAX.

Secret-shared arrays are pytrees, protocols are pure functions of (shares, key), and whole programs compile
through XLA. Importing sjax turns on JAX's 64-bit mode (``jax_enable_x64``): ring elements are ``uint64``.
"""

import jax

# Ring elements are uint64; without 64-bit mode JAX would silently narrow them to 32 bits.
jax.config.update("jax_enable_x64", True)

from sjax import comm as comm  # noqa: E402
from sjax import debug as debug  # noqa: E402
from sjax import nn as nn  # noqa: E402
from sjax import parallel as parallel  # noqa: E402
from sjax import prg as prg  # noqa: E402
from sjax import randomness as randomness  # noqa: E402
from sjax import ring as ring  # noqa: E402
from sjax.accounting import LAN as LAN  # noqa: E402
from sjax.accounting import WAN as WAN  # noqa: E402
from sjax.accounting import Cost as Cost  # noqa: E402
from sjax.accounting import NetworkModel as NetworkModel  # noqa: E402
from sjax.accounting import cost as cost  # noqa: E402
from sjax.compilation import compiler_options as compiler_options  # noqa: E402
from sjax.primitives import *  # noqa: E402,F403  (the protocols, listed in sjax.primitives.__all__)
from sjax.primitives import __all__ as _primitive_names  # noqa: E402
from sjax.shares import ArithShare as ArithShare  # noqa: E402
from sjax.shares import BinShare as BinShare  # noqa: E402
from sjax.shares import concatenate as concatenate  # noqa: E402
from sjax.shares import stack as stack  # noqa: E402
from sjax.storage import load, load_all, save  # noqa: E402
from sjax.transform import secure as secure  # noqa: E402

__version__ = "0.1.0"

__all__ = sorted(_primitive_names) + [
    "ArithShare",
    "BinShare",
    "Cost",
    "LAN",
    "NetworkModel",
    "WAN",
    "comm",
    "compiler_options",
    "debug",
    "nn",
    "concatenate",
    "cost",
    "parallel",
    "prg",
    "randomness",
    "ring",
    "secure",
    "stack",
    "save",
    "load",
    "load_all",
]
