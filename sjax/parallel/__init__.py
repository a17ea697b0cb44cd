"""Runners: how the party axis is executed.

A protocol body is written once, from one party's point of view (see :mod:`sjax.comm`). A runner maps it
over the parties:

* :mod:`sjax.parallel.simulate` (the default): ``jax.vmap`` over the stacked party axis, on one device;
* :mod:`sjax.parallel.devices`: ``jax.shard_map`` over a mesh with one device per party.

Both take the same arguments and give bit-identical results for the same key.
"""

from sjax.parallel import devices as devices
from sjax.parallel import simulate as simulate

__all__ = ["devices", "simulate"]
