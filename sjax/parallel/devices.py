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
    return jax.make_mesh((n_parties,), (PARTY_AXIS,), axis_types=(AxisType.Auto,), devices=devices[:n_parties])


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
    parties = jax.device_put(tuple(parties), NamedSharding(mesh, P(PARTY_AXIS)))

    def local(p, r):
        # shard_map hands each device a block of one party; the body sees that party's arrays alone.
        result = body(*jax.tree.map(lambda leaf: leaf[0], p), *r)
        return jax.tree.map(lambda leaf: leaf[None], result) if out == "party" else result

    out_specs = P(PARTY_AXIS) if out == "party" else P()
    return jax.shard_map(local, mesh=mesh, in_specs=(P(PARTY_AXIS), P()), out_specs=out_specs)(
        parties, tuple(replicated)
    )
