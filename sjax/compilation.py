"""XLA compiler options that suit sjax's programs, per backend.

Secure programs are thousands of small integer kernels (ChaCha20 rounds, bit circuits, fixed-point
truncations), and on CPU compiling them costs more than running them once. Pass these options to
``jax.jit``::

    step = jax.jit(sjax.secure(train_step), compiler_options=sjax.compiler_options())

They only change how XLA compiles; every result is the same, bit for bit. Give them to the outermost
``jax.jit`` only: JAX refuses compiler options on a jit traced inside another trace (another jit,
:func:`sjax.cost`, :func:`sjax.secure`), so jit the function to measure or transform without them.
"""

from __future__ import annotations

import jax

__all__ = ["compiler_options"]


def compiler_options(backend: str | None = None) -> dict[str, object]:
    """``compiler_options`` for ``jax.jit`` of a secure program on ``backend`` (default: JAX's default).

    On CPU: XLA CPU's older fusion emitters (``xla_cpu_use_fusion_emitters=False``), which emit LLVM IR
    directly instead of going through MLIR. On the 2-core CI machine, for the MLP training epoch of
    ``examples/train_mlp.py`` (``benchmarks/train.py --only mlp``) they took the process's peak memory
    from 2380 to 1571 MB with the same compile and run times; they compile the operations of
    ``benchmarks/ops.py`` 15 to 30% faster (the MLP forward with 3 parties: 17.5 and 15.3 s against 19.6
    and 19.2 s; softmax of 8 values 7.3 s against 5.1 s). Run times moved within the machine's noise,
    except the MLP forward with 2 parties, 0.039 to 0.045 s against 0.031 s in two paired runs. Other
    backends: no options.

    Raises:
        RuntimeError: ``backend`` names a platform JAX cannot initialise.
    """
    platform = jax.default_backend() if backend is None else jax.devices(backend)[0].platform
    if platform == "cpu":
        return {"xla_cpu_use_fusion_emitters": False}
    return {}
