"""Which runner a protocol call takes: the one its shares are placed on.

Placement travels with the shares, as their sharding: shares that ``sjax.share(..., mesh=mesh)`` (or a
protocol on placed shares) produced are ``uint64[n_parties, ...]`` arrays sharded over the mesh axis
``"party"``, with that axis *explicit*, so the placement is part of the array's type and survives
``jax.jit``, ``lax.scan`` and pytree manipulation. Unplaced shares (an ordinary array on one device) are
simulated. Shares on a processes runner's mesh (one process per party, see
:mod:`sjax.parallel.processes`) run there. There is no global runner setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import jax

from sjax.comm import PARTY_AXIS
from sjax.parallel import devices, processes, simulate
from sjax.shares import placement

__all__ = ["run", "mesh_of", "place_like"]


def mesh_of(tree: Any):
    """The party mesh the leaves of ``tree`` are placed on, or ``None`` when they are simulated.

    Raises:
        ValueError: some leaves are placed and others are not, or they are placed on different meshes.
    """
    meshes = [placement(leaf) for leaf in jax.tree.leaves(tree)]
    if not meshes or all(m is None for m in meshes):
        return None
    placed = {m for m in meshes if m is not None}
    if any(m is None for m in meshes):
        raise ValueError(
            "a protocol got shares placed on a party mesh together with simulated (unplaced) shares; "
            "share every input with the same mesh= argument"
        )
    if len({(m.axis_names, m.axis_sizes) for m in placed}) > 1 or len(placed) > 1 and not _same_devices(placed):
        raise ValueError("a protocol got shares placed on different party meshes")
    return next(iter(placed))


def _same_devices(meshes) -> bool:
    ids = set()
    for m in meshes:
        devices_ = getattr(m, "devices", None)
        if devices_ is None:  # abstract meshes: shape and names already agree
            return True
        ids.add(tuple(d.id for d in devices_.flat))
    return len(ids) == 1


def run(
    body: Callable[..., Any],
    parties: tuple[Any, ...],
    replicated: tuple[Any, ...] = (),
    *,
    out: Literal["party", "public"] = "party",
) -> Any:
    """Runs a protocol body over the parties with the runner the ``parties`` arrays are placed on.

    Same contract as :func:`sjax.parallel.simulate.run`: simulated when the stacked share arrays are not
    placed, under ``jax.shard_map`` over their mesh when they are (:func:`sjax.share` with ``mesh=``).
    """
    mesh = mesh_of(parties)
    if mesh is None:
        return simulate.run(body, parties, replicated, out=out)
    if processes.is_processes_mesh(mesh):
        runner = functools.partial(processes.run, body, out=out)
    else:
        runner = functools.partial(devices.run, body, mesh=mesh, out=out)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((parties, replicated))):
        return runner(parties, replicated)
    # Called eagerly: compile the protocol as one program. An eager shard_map runs its body one primitive
    # at a time, each a program of its own with its own collectives (across processes, a protocol of a few
    # hundred primitives then takes tens of seconds; compiled, a few).
    return jax.jit(runner)(tuple(parties), tuple(replicated))


def place_like(stacked: jax.Array, like: jax.Array) -> jax.Array:
    """``stacked`` (party axis first) placed on the party mesh ``like`` is placed on; unchanged if none."""
    mesh = mesh_of(like)
    if mesh is None:
        return stacked
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(PARTY_AXIS))
    if isinstance(stacked, jax.core.Tracer):
        return jax.sharding.reshard(stacked, sharding)
    return jax.device_put(stacked, sharding)
