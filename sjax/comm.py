"""The communication layer: the only code in sjax that talks across the party axis.

Protocol bodies (see :mod:`sjax.parallel`) run once per party over the named axis :data:`PARTY_AXIS`. They
exchange values only through the functions here, which map onto JAX collectives, so the same body runs
simulated under ``jax.vmap`` and for real under ``jax.shard_map``.

Every message is also recorded in the traced program by an identity primitive, ``sjax_message``, whose
parameters carry its size and kind. Because the record lives in the jaxpr, :func:`sjax.cost` can read the
exact communication of any function from its trace, including through ``jit`` caches and loops, at no
run-time cost (the primitive lowers to nothing).

Under the processes runner the party axis has one more slot, the dealer's (its mesh has a second axis,
:data:`DEALER_AXIS`, of size 1, which marks it). There openings go party to party with ``ppermute`` among
the party slots only, so the dealer receives nothing that parties open, and a dealer message goes from the
dealer's slot to party 0 alone.

Cost model: an opening is one round in which every party sends its share to every other party, so each
party sends ``(n_parties - 1) * nbytes(value)``. A dealer message is sent once, offline, to party 0 only.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

__all__ = [
    "PARTY_AXIS",
    "DEALER_AXIS",
    "has_dealer",
    "open_to",
    "party_index",
    "n_parties",
    "is_first_party",
    "open_shares",
    "open_bits",
    "receive_from_dealer",
    "message_p",
    "PartySecrets",
    "party_secrets",
    "holding_secrets",
]

PARTY_AXIS = "party"
DEALER_AXIS = "dealer"
"""A size-1 mesh axis whose presence says the last slot of the party axis is the dealer's (processes)."""

# -- per-party secrets -------------------------------------------------------------------------------


class PartySecrets(NamedTuple):
    """One slot's private key material inside a protocol body (processes runner only).

    Attributes:
        dealer: ``uint32[n_parties, 8]``: row ``i`` is the seed party ``i`` shares with the dealer. A party
            holds its own row (the others are zero); the dealer holds every row.
        pairwise: ``uint32[n_parties, 8]``: row ``j`` is the seed this party shares with party ``j`` (zero
            for itself and, in the dealer's slot, everywhere).
    """

    dealer: jax.Array
    pairwise: jax.Array


_SECRETS: contextvars.ContextVar[PartySecrets | None] = contextvars.ContextVar("sjax_secrets", default=None)


def party_secrets() -> PartySecrets | None:
    """The private seeds of the slot whose body is being traced, or ``None`` (simulate and devices runners,
    where every seed derives from the user's key)."""
    return _SECRETS.get()


@contextlib.contextmanager
def holding_secrets(secrets: PartySecrets) -> Iterator[None]:
    """While a runner traces a body: the body's randomness mixes ``secrets`` into every seed."""
    token = _SECRETS.set(secrets)
    try:
        yield
    finally:
        _SECRETS.reset(token)


# -- the message record ------------------------------------------------------------------------------

message_p = Primitive("sjax_message")
"""Identity on its operands; its parameters describe one message from one party's point of view.

Parameters:
    kind: ``"open"`` (online, every party to every other) or ``"dealer"`` (offline, dealer to party 0).
    rounds: online rounds the message takes (1 for an opening, 0 for a dealer message).
    nbytes: bytes this party sends (for ``"open"``) or the dealer sends (for ``"dealer"``).
    correlations: ``((name, count), ...)``: the correlated randomness a dealer message completes.
"""
message_p.multiple_results = True
message_p.def_impl(lambda *values, **params: values)
message_p.def_abstract_eval(lambda *avals, **params: avals)
mlir.register_lowering(message_p, lambda ctx, *values, **params: values)


def _message_batcher(axis_data, values, dims, **params):
    # Mapping over the party axis runs the parties side by side: each still sends one party's message.
    # Any other vmap (a batch of independent calls) sends that many messages' worth of data at once.
    if axis_data.name != PARTY_AXIS:
        size = int(axis_data.size)
        params = dict(
            params,
            nbytes=params["nbytes"] * size,
            correlations=tuple((name, count * size) for name, count in params["correlations"]),
        )
    return message_p.bind(*values, **params), dims


batching.fancy_primitive_batchers[message_p] = _message_batcher


def _nbytes(values) -> int:
    return int(sum(np.prod(v.shape, dtype=np.int64) * v.dtype.itemsize for v in values))


# -- collectives -------------------------------------------------------------------------------------


def has_dealer() -> bool:
    """Whether the last slot of the party axis is the dealer's (the processes runner); static."""
    try:
        lax.axis_size(DEALER_AXIS)
    except NameError:
        return False
    return True


def party_index() -> jax.Array:
    """This party's index on the party axis, an ``int32`` scalar in ``[0, n_parties)`` (the dealer's slot,
    under the processes runner, is ``n_parties``)."""
    return lax.axis_index(PARTY_AXIS)


def n_parties() -> int:
    """The number of parties on the party axis (static), not counting the dealer's slot."""
    return int(lax.axis_size(PARTY_AXIS)) - int(has_dealer())


def _send_among_parties(values: tuple[jax.Array, ...], combine) -> tuple[jax.Array, ...]:
    """Every party's ``values`` combined over the parties, by ``n - 1`` permutations among party slots.

    The dealer's slot is neither a source nor a destination: it receives zeros.
    """
    n = n_parties()
    total = values
    for shift in range(1, n):
        perm = [(i, (i + shift) % n) for i in range(n)]
        received = lax.ppermute(values, PARTY_AXIS, perm)
        total = tuple(combine(t, r) for t, r in zip(total, received))
    # The dealer's slot took part in nothing; give it zeros rather than its own noise.
    in_dealer_slot = party_index() == n
    return tuple(jnp.where(in_dealer_slot, jnp.zeros_like(t), t) for t in total)


def _record_open(shares: tuple[jax.Array, ...], nbytes: int) -> tuple[jax.Array, ...]:
    return tuple(message_p.bind(*shares, kind="open", rounds=1, nbytes=nbytes, correlations=()))


def is_first_party() -> jax.Array:
    """Whether this party is party 0, the one that applies public constants and receives dealer messages."""
    return party_index() == 0


def open_shares(*shares: jax.Array) -> tuple[jax.Array, ...]:
    """Opens additively shared ring elements: every party learns ``sum_i shares_i mod 2^64``.

    All operands go out in one message, so opening several values costs one round.

    Cost: 1 round; each party sends ``(n_parties - 1) * 8 * total_size`` bytes.
    Leakage: the opened values, by definition; callers open only masked values.
    """
    if not shares:
        raise ValueError("open_shares needs at least one array")
    sent = _record_open(shares, (n_parties() - 1) * _nbytes(shares))
    if has_dealer():
        return _send_among_parties(sent, lambda a, b: a + b)
    return tuple(lax.psum(sent, PARTY_AXIS))


def open_to(receiver: int, *shares: jax.Array) -> tuple[jax.Array, ...]:
    """Opens additively shared ring elements to party ``receiver`` alone.

    Every other party sends its share to ``receiver``, which adds them up; the others (and the dealer)
    receive nothing and get zeros.

    Cost: 1 round; each party other than ``receiver`` sends ``8 * total_size`` bytes (counted here as the
    per-party figure, the most any one party sends).
    Leakage: the opened values, to ``receiver`` only.
    """
    if not shares:
        raise ValueError("open_to needs at least one array")
    n = n_parties()
    if not 0 <= receiver < n:
        raise ValueError(f"cannot open to party {receiver}: there are {n} parties (0 to {n - 1})")
    sent = _record_open(shares, _nbytes(shares))
    me = party_index()
    # Under shard_map (devices, processes) each sender's ppermute goes to the receiver alone. jax.vmap (the
    # simulate runner) only maps a ppermute that moves every party's slot: there each sender's share goes
    # round a full cyclic shift in which every other slot carries zeros, so a party other than the
    # receiver still receives nothing but zeros.
    simulated = PARTY_AXIS not in getattr(jax.sharding.get_abstract_mesh(), "manual_axes", ())
    total = list(sent)
    for source in range(n):
        if source == receiver:
            continue
        if simulated:
            shift = (receiver - source) % n
            perm = [(i, (i + shift) % n) for i in range(n)]
            outgoing = [jnp.where(me == source, s, jnp.zeros_like(s)) for s in sent]
        else:
            perm, outgoing = [(source, receiver)], sent
        received = lax.ppermute(outgoing, PARTY_AXIS, perm)
        total = [t + r for t, r in zip(total, received)]
    mine = me == receiver
    return tuple(jnp.where(mine, t, jnp.zeros_like(t)) for t in total)


def receive_from_dealer(
    corrections: tuple[jax.Array, ...],
    own: tuple[jax.Array, ...],
    *,
    correlations: tuple[tuple[str, int], ...],
) -> tuple[jax.Array, ...]:
    """Delivers the dealer's corrections to party 0; every other party keeps its ``own`` values.

    ``corrections`` are computed by the dealer from key material alone (never from shares or opened
    values). They travel in one offline message to party 0 only.

    Cost: 0 online rounds; the dealer sends ``8 * total_size`` bytes to party 0.
    """
    received = message_p.bind(
        *corrections,
        kind="dealer",
        rounds=0,
        nbytes=_nbytes(corrections),
        correlations=tuple((str(name), int(count)) for name, count in correlations),
    )
    if has_dealer():
        # Only the dealer's slot can compute the corrections: it alone holds every party's seed.
        received = lax.ppermute(tuple(received), PARTY_AXIS, [(n_parties(), 0)])
    first = is_first_party()
    return tuple(jnp.where(first, c, o) for c, o in zip(received, own))


def open_bits(*shares: jax.Array) -> tuple[jax.Array, ...]:
    """Opens XOR-shared words: every party learns ``shares_0 ^ ... ^ shares_{n-1}``.

    Cost: 1 round; each party sends ``(n_parties - 1) * 8 * total_size`` bytes.
    Leakage: the opened values, by definition.
    """
    if not shares:
        raise ValueError("open_bits needs at least one array")
    sent = _record_open(shares, (n_parties() - 1) * _nbytes(shares))
    if has_dealer():
        return _send_among_parties(sent, lambda a, b: a ^ b)
    gathered = lax.all_gather(tuple(sent), PARTY_AXIS)
    return tuple(lax.reduce(g, jnp.uint64(0), lax.bitwise_xor, (0,)) for g in gathered)
