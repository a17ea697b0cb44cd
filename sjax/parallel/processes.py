"""The processes runner: one process per party and one for the dealer, on JAX's multi-process runtime.

Every process calls :func:`init` (the launcher, :mod:`sjax.parallel.launch`, or :mod:`sjax.parallel.party`
does it before the user's script starts), which starts ``jax.distributed`` with CPU collectives over gloo
and builds the mesh: ``n_parties + 1`` devices, one per process, on the axis ``"party"``; the last slot is
the dealer's, marked by a second mesh axis :data:`sjax.comm.DEALER_AXIS` of size 1. Shares made in such a
process are ``uint64[n_parties + 1, ...]`` arrays sharded over that axis: each process holds its own row
only (the dealer's row is zeros), and every protocol body runs under ``jax.shard_map`` as one SPMD program
that all processes execute together.

Security (see SECURITY.md):

* Per-party secrets. At start each party draws private entropy from ``os.urandom``: one 256-bit seed for
  the dealer and one for each party with a higher index. Each seed travels once, to the one process that
  shares it (``ppermute`` between that pair). Every mask and correlation then derives from these seeds
  with ChaCha20 used as a PRF on the public key the protocol was given, so no party can compute another
  party's masks, and runs are not reproducible across starts (they are within one, key by key).
* The dealer computes corrections from its seeds alone and sends them to party 0 alone. Openings go party
  to party (``ppermute`` among party slots): the dealer receives nothing that parties open.
* Transport: gloo sends bytes over TCP without encryption. Run the parties inside a private network or
  VPN.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sjax import comm
from sjax.comm import DEALER_AXIS, PARTY_AXIS

__all__ = ["Runtime", "init", "runtime", "party_index", "is_dealer", "run", "local_array", "shutdown"]

_SEED_WORDS = 8  # a 256-bit ChaCha20 key


@dataclasses.dataclass(frozen=True)
class Runtime:
    """This process's place among the parties.

    Attributes:
        n_parties: the number of parties (the dealer not counted).
        rank: this process's slot: ``0 .. n_parties - 1`` for a party, ``n_parties`` for the dealer.
        mesh: the ``(n_parties + 1, 1)`` mesh over ``("party", "dealer")``, one device per process.
        dealer_seeds: ``uint32[n_parties, 8]``, row ``i`` the seed party ``i`` shares with the dealer (a party
            holds its own row, the dealer all of them).
        pairwise_seeds: ``uint32[n_parties, 8]``, row ``j`` the seed shared with party ``j``.
    """

    n_parties: int
    rank: int
    mesh: Mesh
    dealer_seeds: np.ndarray = dataclasses.field(repr=False)
    pairwise_seeds: np.ndarray = dataclasses.field(repr=False)

    @property
    def is_dealer(self) -> bool:
        return self.rank == self.n_parties

    @property
    def party_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(PARTY_AXIS))


_RUNTIME: Runtime | None = None


def runtime() -> Runtime | None:
    """This process's :class:`Runtime`, or ``None`` where no processes runner was started."""
    return _RUNTIME


def party_index() -> int | None:
    """Which party this process is, or ``None`` in the dealer's process and where no party runner is active."""
    if _RUNTIME is None or _RUNTIME.is_dealer:
        return None
    return _RUNTIME.rank


def is_dealer() -> bool:
    """Whether this process is the dealer of a processes runner."""
    return _RUNTIME is not None and _RUNTIME.is_dealer


def init(
    coordinator: str,
    n_parties: int,
    rank: int,
    *,
    timeout_s: int = 60,
    heartbeat_timeout_s: int = 20,
) -> Runtime:
    """Joins this process to the parties: ``jax.distributed``, the mesh, and the private seeds.

    Args:
        coordinator: ``HOST:PORT`` of the coordination service; the process of rank 0 serves it.
        n_parties: the number of parties, at least 2; ``n_parties + 1`` processes take part (the dealer too).
        rank: this process's slot, ``0 .. n_parties - 1`` for a party, ``n_parties`` for the dealer.
        timeout_s: how long to wait for every process to join before failing.
        heartbeat_timeout_s: after how long without a heartbeat a process counts as dead; every other
            process then stops with an error instead of waiting for it.

    Raises:
        RuntimeError: a runner is already active in this process, or the processes could not connect.
        ValueError: bad ``n_parties``, ``rank`` or ``coordinator``.
    """
    global _RUNTIME
    if _RUNTIME is not None:
        raise RuntimeError(f"this process already runs as slot {_RUNTIME.rank} of {_RUNTIME.n_parties} parties")
    if isinstance(n_parties, bool) or not isinstance(n_parties, int) or n_parties < 2:
        raise ValueError(f"n_parties must be an int of at least 2, got {n_parties!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= n_parties:
        raise ValueError(f"rank must be in [0, {n_parties}] ({n_parties} is the dealer), got {rank!r}")
    if not isinstance(coordinator, str) or ":" not in coordinator:
        raise ValueError(f"coordinator must be 'HOST:PORT', got {coordinator!r}")

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=n_parties + 1,
            process_id=rank,
            local_device_ids=[0],
            initialization_timeout=timeout_s,
            heartbeat_timeout_seconds=heartbeat_timeout_s,
        )
    except Exception as error:  # noqa: BLE001  (jaxlib raises its own error types)
        raise RuntimeError(
            f"slot {rank}: could not join the {n_parties + 1} processes at {coordinator} within {timeout_s} s "
            f"({type(error).__name__}: {error}). Check that every party was started with the same "
            "--parties and coordinator and that the coordinator is reachable."
        ) from error
    if jax.process_count() != n_parties + 1:
        raise RuntimeError(
            f"{jax.process_count()} processes joined, expected {n_parties + 1} ({n_parties} parties and the dealer)"
        )
    devices = sorted(jax.devices(), key=lambda d: d.process_index)
    mesh = jax.make_mesh(
        (n_parties + 1, 1),
        (PARTY_AXIS, DEALER_AXIS),
        axis_types=(AxisType.Explicit, AxisType.Explicit),
        devices=devices,
    )
    dealer_seeds, pairwise_seeds = _agree_on_seeds(mesh, n_parties, rank)
    _RUNTIME = Runtime(n_parties, rank, mesh, dealer_seeds, pairwise_seeds)
    return _RUNTIME


def shutdown() -> None:
    """Leaves the parties (waits for the others at a barrier, then stops ``jax.distributed``)."""
    global _RUNTIME
    if _RUNTIME is not None:
        _RUNTIME = None
        jax.distributed.shutdown()


def _agree_on_seeds(mesh: Mesh, n_parties: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws this process's seeds from ``os.urandom`` and sends each to the one process that shares it.

    Party ``i`` draws the seed it shares with the dealer and those it shares with every party ``j > i``.
    One SPMD program moves them: a ``ppermute`` per shift, each seed from its drawer to its partner only.
    """
    slots = n_parties + 1
    dealer = n_parties
    outgoing = np.zeros((slots, _SEED_WORDS), np.uint32)  # row d: what this process sends to slot d
    if rank != dealer:
        for destination in [*range(rank + 1, n_parties), dealer]:
            outgoing[destination] = np.frombuffer(os.urandom(4 * _SEED_WORDS), np.uint32)
    sharding = NamedSharding(mesh, P(PARTY_AXIS))
    table = jax.make_array_from_process_local_data(sharding, outgoing[None], (slots, slots, _SEED_WORDS))

    def exchange(rows):
        rows = rows[0]
        received = jnp.zeros_like(rows)  # row s: what slot s sent to this process
        me = jax.lax.axis_index(PARTY_AXIS)
        for shift in range(1, slots):
            perm = [(s, (s + shift) % slots) for s in range(slots)]
            # Each source sends the row addressed to its destination under this shift.
            row = jnp.take(rows, (me + shift) % slots, axis=0)
            got = jax.lax.ppermute(row, PARTY_AXIS, perm)
            received = received.at[(me - shift) % slots].set(got)
        return received[None]

    program = jax.jit(
        jax.shard_map(exchange, mesh=mesh, in_specs=P(PARTY_AXIS), out_specs=P(PARTY_AXIS), check_vma=False)
    )
    received = np.asarray(program(table).addressable_shards[0].data)[0]
    dealer_seeds = np.zeros((n_parties, _SEED_WORDS), np.uint32)
    pairwise = np.zeros((n_parties, _SEED_WORDS), np.uint32)
    if rank == dealer:
        dealer_seeds[:] = received[:n_parties]
    else:
        dealer_seeds[rank] = outgoing[dealer]
        for peer in range(n_parties):
            if peer < rank:
                pairwise[peer] = received[peer]
            elif peer > rank:
                pairwise[peer] = outgoing[peer]
    return dealer_seeds, pairwise


def _secrets_callback(rt: Runtime) -> comm.PartySecrets:
    """The process-local seeds as values inside an SPMD program (a host callback on each process)."""
    shapes = (
        jax.ShapeDtypeStruct(rt.dealer_seeds.shape, jnp.uint32),
        jax.ShapeDtypeStruct(rt.pairwise_seeds.shape, jnp.uint32),
    )
    dealer, pairwise = jax.pure_callback(lambda: (rt.dealer_seeds, rt.pairwise_seeds), shapes)
    return comm.PartySecrets(dealer, pairwise)


def run(
    body: Callable[..., Any],
    parties: tuple[Any, ...],
    replicated: tuple[Any, ...] = (),
    *,
    out: Literal["party", "public"] = "party",
) -> Any:
    """Runs ``body(*local_parties, *replicated)`` in every process, party ``i``'s row in process ``i``.

    Same contract as :func:`sjax.parallel.simulate.run`, on shares placed on this runtime's mesh
    (``uint64[n_parties + 1, ...]``, the last row the dealer's). The body's randomness mixes in this
    process's private seeds. A ``"public"`` output is what the parties opened; the dealer's copy is zeros.
    """
    rt = _require()

    def local(p, r):
        with comm.holding_secrets(_secrets_callback(rt)):
            result = body(*jax.tree.map(lambda leaf: leaf[0], p), *r)
        return jax.tree.map(lambda leaf: leaf[None], result) if out == "party" else result

    out_specs = P(PARTY_AXIS) if out == "party" else P()
    # check_vma=False: a public output differs in the dealer's slot (zeros), by design.
    return jax.shard_map(
        local, mesh=rt.mesh, in_specs=(P(PARTY_AXIS), P()), out_specs=out_specs, check_vma=False
    )(tuple(parties), tuple(replicated))


def _require() -> Runtime:
    if _RUNTIME is None:
        raise RuntimeError(
            "no processes runner is active in this process; start the script with "
            "`python -m sjax.parallel.launch --parties N SCRIPT` or `python -m sjax.parallel.party ...`"
        )
    return _RUNTIME


def local_array(global_array: jax.Array) -> np.ndarray:
    """This process's copy of a replicated array, or its own row of a party-sharded one."""
    (shard,) = global_array.addressable_shards
    return np.asarray(shard.data)


def is_processes_mesh(mesh: Any) -> bool:
    """Whether ``mesh`` (concrete or abstract) is a processes runner's mesh (it has the dealer axis)."""
    return mesh is not None and DEALER_AXIS in getattr(mesh, "axis_names", ())
