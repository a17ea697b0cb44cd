"""Runners: how the party axis is executed.

A protocol body is written once, from one party's point of view (see :mod:`sjax.comm`). A runner maps it
over the parties:

* :mod:`sjax.parallel.simulate` (the default): ``jax.vmap`` over the stacked party axis, on one device;
* :mod:`sjax.parallel.devices`: ``jax.shard_map`` over a mesh with one device per party;
* :mod:`sjax.parallel.processes`: the same ``shard_map`` over a mesh that spans one process per party and one
  for the dealer (``jax.distributed``, gloo); started by :mod:`sjax.parallel.launch` on one machine or
  :mod:`sjax.parallel.party` on several.

Both take the same arguments and give bit-identical results for the same key. :func:`run` picks the one
the shares are placed on (see :func:`sjax.share`'s ``mesh`` argument): the placement travels with the
shares, as their sharding.
"""

from sjax.parallel import devices as devices
from sjax.parallel import processes as processes
from sjax.parallel import simulate as simulate
from sjax.parallel._dispatch import mesh_of as mesh_of
from sjax.parallel._dispatch import place_like as place_like
from sjax.parallel._dispatch import run as run
from sjax.parallel.devices import party_mesh as party_mesh
from sjax.parallel.processes import is_dealer as is_dealer
from sjax.parallel.processes import party_index as party_index

__all__ = ["devices", "processes", "simulate", "run", "mesh_of", "place_like", "party_mesh", "party_index", "is_dealer"]
