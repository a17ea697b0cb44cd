"""Communication cost of any function, read off its trace before anything runs.

Every message a protocol sends is recorded in the traced program by :data:`sjax.comm.message_p`. This
module traces a function to a jaxpr and walks it:

* **rounds** is the longest chain of dependent online messages (openings that do not depend on each other
  count once, as they can go out together), with loops unrolled by their trip counts;
* **bytes_per_party** is what one party sends online in total;
* **dealer_bytes** and **correlations** describe the offline phase: what the dealer sends to party 0 and
  how many correlations of each kind the function uses (elementwise correlations count one per element,
  matrix and convolution triples one per product).

Because the record is part of the jaxpr, this works through ``jax.jit`` caches, ``lax.scan`` and
``lax.fori_loop`` with static trip counts, ``lax.cond`` (the costlier branch) and nested jaxprs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import jax
from jax.extend import core

from sjax.comm import message_p

__all__ = ["Cost", "NetworkModel", "LAN", "WAN", "cost"]


@dataclasses.dataclass(frozen=True)
class NetworkModel:
    """A network for time estimates: one-way latency per round and bandwidth per party."""

    name: str
    latency_s: float
    bandwidth_bytes_per_s: float


LAN = NetworkModel("LAN", latency_s=0.25e-3, bandwidth_bytes_per_s=1.25e9)  # 10 Gbit/s, 0.25 ms
WAN = NetworkModel("WAN", latency_s=40e-3, bandwidth_bytes_per_s=12.5e6)  # 100 Mbit/s, 40 ms


@dataclasses.dataclass(frozen=True)
class Cost:
    """Communication of one call, per party.

    Attributes:
        rounds: online rounds on the critical path.
        bytes_per_party: bytes each party sends online.
        messages: online messages each party sends (an opening of several values is one message).
        dealer_bytes: bytes the dealer sends offline (all to party 0).
        correlations: correlated randomness used, by kind.
    """

    rounds: int = 0
    bytes_per_party: int = 0
    messages: int = 0
    dealer_bytes: int = 0
    correlations: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def seconds(self, network: NetworkModel = LAN) -> float:
        """Estimated online communication time: ``rounds * latency + bytes / bandwidth``."""
        return self.rounds * network.latency_s + self.bytes_per_party / network.bandwidth_bytes_per_s

    @property
    def lan_seconds(self) -> float:
        """:meth:`seconds` on :data:`LAN` (10 Gbit/s, 0.25 ms latency)."""
        return self.seconds(LAN)

    @property
    def wan_seconds(self) -> float:
        """:meth:`seconds` on :data:`WAN` (100 Mbit/s, 40 ms latency)."""
        return self.seconds(WAN)

    def __str__(self) -> str:
        correlations = ", ".join(f"{k}: {v}" for k, v in sorted(self.correlations.items())) or "none"
        return (
            f"{self.rounds} round{'' if self.rounds == 1 else 's'}, {_human_bytes(self.bytes_per_party)} sent per party, "
            f"dealer {_human_bytes(self.dealer_bytes)} ({correlations}); "
            f"~{self.lan_seconds * 1e3:.2f} ms LAN, ~{self.wan_seconds * 1e3:.0f} ms WAN"
        )


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


@dataclasses.dataclass
class _Tally:
    bytes_per_party: int = 0
    messages: int = 0
    dealer_bytes: int = 0
    correlations: Counter = dataclasses.field(default_factory=Counter)
    deepest: int = 0  # rounds on the longest chain inside, whether or not it reaches an output

    def add(self, other: _Tally, times: int = 1) -> None:
        self.bytes_per_party += times * other.bytes_per_party
        self.messages += times * other.messages
        self.dealer_bytes += times * other.dealer_bytes
        for name, count in other.correlations.items():
            self.correlations[name] += times * count

    def key(self) -> tuple[int, int, int]:
        return (self.bytes_per_party, self.dealer_bytes, self.messages)


def _sub_jaxprs(params: Mapping[str, Any]) -> list[core.Jaxpr]:
    found = []
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, core.ClosedJaxpr):
                found.append(item.jaxpr)
            elif isinstance(item, core.Jaxpr):
                found.append(item)
    return found


def _analyse(jaxpr: core.Jaxpr, in_depths: list[int]) -> tuple[list[int], _Tally]:
    """Depth (rounds so far) of every output, and the traffic, of ``jaxpr`` given its inputs' depths."""
    depth: dict[Any, int] = dict(zip(jaxpr.invars, in_depths))
    tally = _Tally()

    def read(var) -> int:
        return 0 if isinstance(var, core.Literal) else depth.get(var, 0)

    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        start = max(inputs, default=0)
        name = eqn.primitive.name
        subs = _sub_jaxprs(eqn.params)
        if eqn.primitive is message_p:
            p = eqn.params
            if p["kind"] == "open":
                tally.bytes_per_party += p["nbytes"]
                tally.messages += 1
            else:
                tally.dealer_bytes += p["nbytes"]
                for correlation, count in p["correlations"]:
                    tally.correlations[correlation] += count
            outs = [start + p["rounds"]] * len(eqn.outvars)
        elif not subs:
            outs = [start] * len(eqn.outvars)
        elif name == "scan":
            _, body = _analyse(subs[0], [0] * len(subs[0].invars))
            length = int(eqn.params["length"])
            tally.add(body, times=length)
            outs = [start + length * body.deepest] * len(eqn.outvars)
        elif name == "while":
            for sub in subs:
                _, sub_tally = _analyse(sub, [0] * len(sub.invars))
                if sub_tally.messages or sub_tally.dealer_bytes:
                    raise ValueError(
                        "sjax.cost: a while loop whose body communicates has no static trip count; "
                        "use lax.fori_loop with static bounds or lax.scan"
                    )
            outs = [start] * len(eqn.outvars)
        elif name == "cond":
            # The predicate is an input; the costlier branch bounds the cost.
            # A branch starts once its predicate is known.
            results = [_analyse(sub, [max(d, inputs[0]) for d in inputs[1:]]) for sub in subs]
            branch_outs, worst = max(results, key=lambda r: (r[1].deepest, r[1].key()))
            tally.add(worst)
            tally.deepest = max(tally.deepest, worst.deepest)
            outs = [max(d, inputs[0]) for d in branch_outs]
        elif len(subs) == 1 and len(subs[0].invars) == len(eqn.invars):
            # jit, custom_jvp_call, custom_vjp_call, remat, shard_map ...: inputs map one to one.
            outs, inner = _analyse(subs[0], inputs)
            tally.add(inner)
            tally.deepest = max(tally.deepest, inner.deepest)
            outs = outs[: len(eqn.outvars)] + [start] * (len(eqn.outvars) - len(outs))
        else:
            worst_depth = 0
            for sub in subs:
                _, inner = _analyse(sub, [0] * len(sub.invars))
                tally.add(inner)
                worst_depth = max(worst_depth, inner.deepest)
            outs = [start + worst_depth] * len(eqn.outvars)
        for var, d in zip(eqn.outvars, outs):
            depth[var] = d
    tally.deepest = max([tally.deepest, *depth.values()])
    return [read(v) for v in jaxpr.outvars], tally


def cost(f: Callable[..., Any]) -> Callable[..., Cost]:
    """Returns a function that gives the communication cost of ``f(*args, **kwargs)`` without running it.

    ``f`` is traced with ``jax.make_jaxpr`` (shares and arrays may be abstract, ``jax.ShapeDtypeStruct``
    included); no protocol runs and nothing is sent. Keyword arguments are passed through as they are.

    Example:
        >>> c = sjax.cost(sjax.mul)(x, y, key)
        >>> c.rounds, c.bytes_per_party, c.correlations
    """

    @functools.wraps(f)
    def wrapped(*args, **kwargs) -> Cost:
        closed = jax.make_jaxpr(lambda *a: f(*a, **kwargs))(*args)
        outs, tally = _analyse(closed.jaxpr, [0] * len(closed.jaxpr.invars))
        return Cost(
            rounds=max([tally.deepest, *outs]),
            bytes_per_party=tally.bytes_per_party,
            messages=tally.messages,
            dealer_bytes=tally.dealer_bytes,
            correlations=dict(tally.correlations),
        )

    return wrapped
