"""The secure transform: plain JAX functions (flax models, ``jax.grad``, optax updates) on secret shares."""

from sjax.transform._interpreter import secure as secure

__all__ = ["secure"]
