"""The simulate runner: every party on one device, the party axis mapped by ``jax.vmap``.

For research and testing: all shares live in one process, so this runner gives no security.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax

from sjax.comm import PARTY_AXIS

__all__ = ["run"]


def run(
    body: Callable[..., Any],
    parties: tuple[Any, ...],
    replicated: tuple[Any, ...] = (),
    *,
    out: Literal["party", "public"] = "party",
) -> Any:
    """Runs ``body(*local_parties, *replicated)`` once per party.

    Args:
        body: a protocol body in SPMD form: it sees one party's arrays (no party axis) and communicates
            only through :mod:`sjax.comm`.
        parties: pytrees of stacked per-party arrays, party axis first (``uint64[n_parties, ...]``).
        replicated: pytrees every party holds in full (keys, public values).
        out: ``"party"`` if the outputs are per-party shares (stacked, party axis first), ``"public"`` if
            they are the same for every party (opened values).

    Returns:
        The body's outputs, stacked over parties or public.
    """
    out_axes = 0 if out == "party" else None
    return jax.vmap(
        lambda p, r: body(*p, *r), in_axes=(0, None), out_axes=out_axes, axis_name=PARTY_AXIS
    )(tuple(parties), tuple(replicated))
