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

Faults: joining is bounded by ``timeout_s`` (see :func:`init`): an unreachable coordinator, a process that
never joins and processes started with different party counts each end every process with an error that
says which; a process that dies later is noticed through JAX's heartbeat.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import time
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
# JAX's own joining deadline is set this much past sjax's, so that sjax's check, with its clear message,
# always fires first (when JAX's fires, its client aborts the process with a C++ fatal error).
_JAX_DEADLINE_MARGIN_S = 15
# After a failed join, how long party 0's process (which serves the coordination service) stays up so that
# the others report their own errors before the service goes away.
_LEAVE_LAST_S = 3.0


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
    timeout_s: float = 60,
    heartbeat_timeout_s: int = 20,
) -> Runtime:
    """Joins this process to the parties: ``jax.distributed``, the mesh, and the private seeds.

    Joining happens in three steps, all within ``timeout_s``: a process other than party 0 first waits until
    the coordinator accepts TCP connections; then every process joins ``jax.distributed``; then the
    processes compare their party counts through the coordination service's key-value store, so that a
    process started with another ``--parties`` than the others makes every process fail with an error that
    names both counts (rather than a hang, or a process that dies later in a collective).

    A process that is still joining when ``timeout_s`` runs out prints why to stderr and exits at once with
    status 3: JAX's client would otherwise abort the process (a C++ fatal error) a little later.

    Args:
        coordinator: ``HOST:PORT`` of the coordination service; the process of rank 0 serves it.
        n_parties: the number of parties, at least 2; ``n_parties + 1`` processes take part (the dealer too).
        rank: this process's slot, ``0 .. n_parties - 1`` for a party, ``n_parties`` for the dealer.
        timeout_s: how long to wait for the coordinator and for every process to join before failing.
        heartbeat_timeout_s: after how long without a heartbeat a process counts as dead; every other
            process then stops with an error instead of waiting for it.

    Raises:
        RuntimeError: a runner is already active in this process, the coordinator cannot be reached, or the
            processes disagree on the number of parties.
        ValueError: bad ``n_parties``, ``rank``, ``coordinator`` or ``timeout_s``.
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
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be 'HOST:PORT' with a port in 1..65535, got {coordinator!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")

    me = _slot_name(rank, n_parties)
    deadline = time.monotonic() + timeout_s
    if rank != 0:
        _wait_for_coordinator(host.strip("[]"), int(port), coordinator, me, timeout_s, deadline)

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    step = ["joining jax.distributed (not every process has connected to the coordinator)"]
    # Party 0's process serves the coordination service: it gives up last, after the others have reported.
    give_up_in = max(deadline - time.monotonic(), 0.0) + (_LEAVE_LAST_S if rank == 0 else 0.0)
    watchdog = threading.Timer(give_up_in, _give_up, (me, coordinator, n_parties, timeout_s, step))
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            jax.distributed.initialize(
                coordinator_address=coordinator,
                num_processes=n_parties + 1,
                process_id=rank,
                local_device_ids=[0],
                initialization_timeout=int(timeout_s) + _JAX_DEADLINE_MARGIN_S,
                heartbeat_timeout_seconds=heartbeat_timeout_s,
            )
        except Exception as error:  # noqa: BLE001  (jaxlib raises its own error types)
            raise RuntimeError(
                f"{me}: could not join the {n_parties + 1} processes at {coordinator} "
                f"({type(error).__name__}: {error}). Check that every party was started with the same "
                "--parties and coordinator and that the coordinator is reachable."
            ) from error
        step[0] = "comparing the number of parties (a process has not published its --parties)"
        _check_party_counts(n_parties, rank, deadline)
        step[0] = "starting JAX's CPU backend across the processes"
        if jax.process_count() != n_parties + 1:
            raise RuntimeError(
                f"{jax.process_count()} processes joined, expected {n_parties + 1} "
                f"({n_parties} parties and the dealer)"
            )
    finally:
        watchdog.cancel()
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


def _slot_name(slot: int, n_parties: int) -> str:
    return "the dealer" if slot == n_parties else f"party {slot}"


def _wait_for_coordinator(
    host: str, port: int, coordinator: str, me: str, timeout_s: float, deadline: float
) -> None:
    """Returns once ``host:port`` accepts a TCP connection; raises a clear error at ``deadline``.

    Party 0's process may start after this one, so a refused connection is retried until the deadline.
    """
    last: OSError | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 2.0)):
                return
        except OSError as error:
            last = error
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
    reason = f"{type(last).__name__}: {last}" if last is not None else "no attempt finished"
    raise RuntimeError(
        f"{me}: cannot reach the coordinator at {coordinator} within {timeout_s:g} s ({reason}). Party 0's "
        "process serves it: check that party 0 was started with this --coordinator, that HOST:PORT is "
        "right, and that no firewall blocks the port."
    )


def _give_up(me: str, coordinator: str, n_parties: int, timeout_s: float, step: list[str]) -> None:
    """The joining deadline passed (run by a timer thread): say why, then exit before JAX's client aborts."""
    print(
        f"sjax.parallel.processes: {me}: the {n_parties + 1} processes did not all join at the coordinator "
        f"{coordinator} within {timeout_s:g} s; still {step[0]}. Check that every party and the dealer were "
        f"started, with --parties {n_parties} and the same --coordinator. Exiting with status 3.",
        file=sys.stderr,
        flush=True,
    )
    os._exit(3)


def _check_party_counts(n_parties: int, rank: int, deadline: float) -> None:
    """Every process publishes its party count and reads every other slot's; raises if any differs.

    Uses the key-value store of JAX's coordination service (served by party 0's process), before anything
    depends on the count (JAX's CPU backend waits for ``n_parties + 1`` processes). Every process that
    joined sees a differing count: its own differs from party 0's, or it reads the one that differs. Party
    0's process, which serves the store, leaves only after the others have recorded that they saw it.
    """
    from jax._src import distributed  # the coordination service's client: no public API for its store

    client = distributed.global_state.client
    me = _slot_name(rank, n_parties)
    client.key_value_set(f"sjax/parties/{rank}", str(n_parties))

    def remaining_ms() -> int:
        return max(int((deadline - time.monotonic()) * 1000), 1)

    differing = None
    for slot in range(n_parties + 1):
        if slot != rank:
            # A second past the deadline: a slot that never publishes is reported by init's watchdog.
            theirs = int(client.blocking_key_value_get(f"sjax/parties/{slot}", remaining_ms() + 1000))
            if theirs != n_parties:
                differing = (slot, theirs)
                break
    if differing is None:
        return
    slot, theirs = differing
    client.key_value_set(f"sjax/differs/{rank}", "1")
    if rank == 0:
        for other in range(1, n_parties + 1):
            try:
                client.blocking_key_value_get(f"sjax/differs/{other}", min(remaining_ms(), 5000))
            except Exception:  # noqa: BLE001  (that process is gone or never came: nothing to wait for)
                pass
        # A process that finds the service gone aborts (JAX's client) instead of reporting its own error:
        # give the others a moment to report and exit first.
        time.sleep(_LEAVE_LAST_S)
    raise RuntimeError(
        f"{me}: the processes disagree on the number of parties: this process was started with --parties "
        f"{n_parties}, {_slot_name(slot, theirs)} (slot {slot}) with --parties {theirs}. Start every party "
        "and the dealer with the same --parties."
    )


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
