"""The communication layer: the only code in sjax that talks across the party axis.

Protocol bodies (see :mod:`sjax.parallel`) run once per party over the named axis :data:`PARTY_AXIS`. They
exchange values only through the functions here, which map onto JAX collectives, so the same body runs
simulated under ``jax.vmap`` and for real under ``jax.shard_map``.

Every message is also recorded in the traced program by an identity primitive, ``sjax_message``, whose
parameters carry its size and kind. Because the record lives in the jaxpr, :func:`sjax.cost` can read the
exact communication of any function from its trace, including through ``jit`` caches and loops, at no
run-time cost (the primitive lowers to nothing).

Cost model: an opening is one round in which every party sends its share to every other party, so each
party sends ``(n_parties - 1) * nbytes(value)``. A dealer message is sent once, offline, to party 0 only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

__all__ = [
    "PARTY_AXIS",
    "party_index",
    "n_parties",
    "is_first_party",
    "open_shares",
    "open_bits",
    "receive_from_dealer",
    "message_p",
]

PARTY_AXIS = "party"

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


def party_index() -> jax.Array:
    """This party's index on the party axis, an ``int32`` scalar in ``[0, n_parties)``."""
    return lax.axis_index(PARTY_AXIS)


def n_parties() -> int:
    """The number of parties on the party axis (static)."""
    return int(lax.axis_size(PARTY_AXIS))


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
    sent = message_p.bind(
        *shares,
        kind="open",
        rounds=1,
        nbytes=(n_parties() - 1) * _nbytes(shares),
        correlations=(),
    )
    return tuple(lax.psum(tuple(sent), PARTY_AXIS))


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
    first = is_first_party()
    return tuple(jnp.where(first, c, o) for c, o in zip(received, own))


def open_bits(*shares: jax.Array) -> tuple[jax.Array, ...]:
    """Opens XOR-shared words: every party learns ``shares_0 ^ ... ^ shares_{n-1}``.

    Cost: 1 round; each party sends ``(n_parties - 1) * 8 * total_size`` bytes.
    Leakage: the opened values, by definition.
    """
    if not shares:
        raise ValueError("open_bits needs at least one array")
    sent = message_p.bind(
        *shares,
        kind="open",
        rounds=1,
        nbytes=(n_parties() - 1) * _nbytes(shares),
        correlations=(),
    )
    gathered = lax.all_gather(tuple(sent), PARTY_AXIS)
    return tuple(lax.reduce(g, jnp.uint64(0), lax.bitwise_xor, (0,)) for g in gathered)
