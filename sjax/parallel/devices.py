"""The devices runner: party ``i`` on device ``i`` of a mesh, the party axis mapped by ``jax.shard_map``.

The protocol bodies are the same functions the simulate runner maps with ``jax.vmap``; for the same key the
results are bit-identical.

Like simulation, this runner lives in one process and derives every seed from the user's key, so each
device can recompute the dealer's corrections (the dealer's work is replicated, not sent). It shows that
the protocols run as real SPMD programs with their shares placed one party per device; it is not a
security boundary. Parties in separate processes, with private seeds and a dealer process, are the job of
the processes runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sjax.comm import PARTY_AXIS

__all__ = ["party_mesh", "run"]


def party_mesh(n_parties: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"party"`` with one device per party."""
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < n_parties:
        raise ValueError(
            f"{n_parties} parties need {n_parties} devices, found {len(devices)}; on CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n_parties} before JAX starts"
        )
    # Explicit: the placement becomes part of each share's type, so it travels through jit and pytrees
    # and the dispatcher (sjax.parallel.run) can read it off a traced share.
    return jax.make_mesh(
        (n_parties,), (PARTY_AXIS,), axis_types=(AxisType.Explicit,), devices=devices[:n_parties]
    )


def _place(leaf, mesh: Mesh):
    return jax.device_put(leaf, NamedSharding(mesh, P(PARTY_AXIS)))


def run(
    body: Callable[..., Any],
    parties: tuple[Any, ...],
    replicated: tuple[Any, ...] = (),
    *,
    mesh: Mesh,
    out: Literal["party", "public"] = "party",
) -> Any:
    """Runs ``body(*local_parties, *replicated)`` with party ``i`` on device ``i`` of ``mesh``.

    Same contract as :func:`sjax.parallel.simulate.run`; ``mesh`` has the axis ``"party"``.
    """
    if isinstance(mesh, Mesh):
        # Eagerly, or under jit with a concrete mesh: put each party's row on its device (a no-op for
        # shares already placed there). Under a trace with the abstract mesh of placed shares, they are.
        parties = jax.tree.map(lambda leaf: _place(leaf, mesh), tuple(parties))

    def local(p, r):
        # shard_map hands each device a block of one party; the body sees that party's arrays alone.
        result = body(*jax.tree.map(lambda leaf: leaf[0], p), *r)
        return jax.tree.map(lambda leaf: leaf[None], result) if out == "party" else result

    out_specs = P(PARTY_AXIS) if out == "party" else P()
    return jax.shard_map(local, mesh=mesh, in_specs=(P(PARTY_AXIS), P()), out_specs=out_specs)(
        parties, tuple(replicated)
    )
