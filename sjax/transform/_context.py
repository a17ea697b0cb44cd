"""What the secure interpreter carries through one evaluation: the key stream and the sharing parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from sjax import parallel, randomness, ring
from sjax.shares import ArithShare


def is_secret(value: Any) -> bool:
    return isinstance(value, ArithShare)


class Context:
    """The sharing parameters of one secure evaluation and a stream of fresh keys.

    Every protocol the interpreter calls takes the next key of the stream: the stream splits its current
    key in two, keeps one half and hands out the other, so no key is ever used twice and the same root key
    gives the same keys in the same order (bit-identical results).
    """

    def __init__(self, key: jax.Array, n_parties: int, frac_bits: int, placed_like: jax.Array | None = None):
        self._key = key
        self.n_parties = n_parties
        self.frac_bits = frac_bits
        # Public values lifted to shares go where the secrets are (a devices or processes mesh, if any).
        self._placed_like = placed_like

    def next_key(self) -> jax.Array:
        # randomness.split turns the root key into a ChaCha20 key at its first split (the stream's keys are
        # all ChaCha20 keys) and consumes it only then: an evaluation that needs no key leaves it unused.
        self._key, key = randomness.split(self._key, 2)
        return key

    def abstract_key(self) -> jax.ShapeDtypeStruct:
        """The shape and type of one key of the stream (a ChaCha20 key), for tracing a body abstractly."""
        return jax.eval_shape(randomness.cipher_key, jax.ShapeDtypeStruct(self._key.shape, self._key.dtype))

    def child(self, key: jax.Array) -> Context:
        """A context with the same sharing parameters and its own key stream (a loop body, a branch)."""
        return Context(key, self.n_parties, self.frac_bits, self._placed_like)

    def lift(self, value: Any, shape: tuple[int, ...] | None = None) -> ArithShare:
        """A public value as the trivial sharing in which party 0 holds it (local: no key, no message)."""
        if is_secret(value):
            return value if shape is None or value.shape == tuple(shape) else value.broadcast_to(shape)
        array = jnp.asarray(value)
        if shape is not None:
            array = jnp.broadcast_to(array, shape)
        encoded = ring.encode(array, self.frac_bits)
        slots = self.n_parties if self._placed_like is None else self._placed_like.shape[0]
        zeros = jnp.zeros((slots - 1, *encoded.shape), ring.RING_DTYPE)
        stacked = jnp.concatenate([encoded[None], zeros])
        if self._placed_like is not None:
            stacked = parallel.place_like(stacked, self._placed_like)
        return ArithShare(stacked, frac_bits=self.frac_bits)
