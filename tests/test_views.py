"""What one party receives does not depend on the secrets: statistical tests on its view.

A party's view of a protocol is every message it receives: the other parties' shares of every value opened
to everyone (``comm.open_shares``, ``open_bits``) and the opened result itself; and for an opening to one
party (``comm.open_to``, behind ``reveal(s, to=i)``) what that party actually receives: every message
``open_to`` delivers to it (its ``ppermute`` outputs: the others' shares at the receiver, nothing, that is
zeros, at any other party) and what ``open_to`` returns to it (the opened value at the receiver, zeros
elsewhere). The communication layer is wrapped with a recorder (a debug callback inside the SPMD body
reports what each party sends, and for ``open_to`` what each party receives), the protocol is run with many
keys on two very different secrets, and for every message slot and every bit the frequency of ones under
the first secret is compared with the frequency under the second: a two-sample test per bit,
Bonferroni-corrected, at a fixed seed. Controls check that the test sees a real leak (the view of
``reveal``, which opens the secret itself, and the receiver's view of ``reveal(s, to=i)``).

The dealer's corrections to party 0 are computed from key material alone, so they are not part of what
could depend on a secret, and are not recorded here.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sjax
from sjax import comm

KEYS = 24  # runs per secret
SIZE = 64  # elements per secret
ALPHA = 1e-6  # family-wise false-alarm probability of one test


class _ReceivingLax:
    """``jax.lax`` with ``ppermute`` reporting what it delivers to each party (used inside ``open_to``)."""

    def __init__(self, lax, on_receive):
        self._lax, self._on_receive = lax, on_receive

    def __getattr__(self, name):
        return getattr(self._lax, name)

    def ppermute(self, x, axis_name, perm):
        received = self._lax.ppermute(x, axis_name, perm)
        self._on_receive(received)
        return received


class Recorder:
    """Wraps the opening functions of :mod:`sjax.comm`; collects, per opening, what every party sent and, for
    ``open_to``, what every party received."""

    def __init__(self):
        # (kind, call, party, tag, values): tag "sent", ("received", j) for open_to's j-th message, "output".
        self.events: list[tuple[str, int, int, object, list[np.ndarray]]] = []
        self.calls = 0

    def _reporter(self, kind: str, call: int, tag: object):
        def record(party, *values):
            self.events.append((kind, call, int(party), tag, [np.asarray(v) for v in values]))

        return lambda values: jax.debug.callback(record, comm.party_index(), *values)

    def wrap(self, kind: str, original, monkeypatch):
        def recording(*args):
            shares = args[1:] if kind == "open_to" else args
            call = self.calls
            self.calls += 1
            self._reporter(kind, call, "sent")(shares)
            if kind != "open_to":
                return original(*args)
            messages = itertools.count()

            def on_receive(received):
                self._reporter(kind, call, ("received", next(messages)))(received)

            lax = comm.lax
            comm.lax = _ReceivingLax(lax, on_receive)  # while open_to traces: only its own ppermutes
            try:
                out = original(*args)
            finally:
                comm.lax = lax
            self._reporter(kind, call, "output")(out)
            return out

        monkeypatch.setattr(comm, kind, recording)

    def view(self, party: int, n: int) -> list[np.ndarray]:
        """Party ``party``'s view, per opening: what each other party sent it, then the opened value; for
        ``open_to``, every message delivered to it, then what it got back."""
        jax.effects_barrier()
        by_call: dict[int, dict[tuple[int, object], list[np.ndarray]]] = {}
        kinds = {}
        for kind, call, sender, tag, values in self.events:
            by_call.setdefault(call, {})[sender, tag] = values
            kinds[call] = kind
        view = []
        for call in sorted(by_call):
            recorded = by_call[call]
            sent = {p: v for (p, tag), v in recorded.items() if tag == "sent"}
            assert sorted(sent) == list(range(n)), f"opening {call}: messages from parties {sorted(sent)}"
            if kinds[call] == "open_to":
                tags = [t for p, t in recorded if p == party and t != "sent"]
                tags.sort(key=lambda t: (t == "output", t))
                assert tags and tags[-1] == "output", f"opening {call}: nothing recorded at party {party}"
                view.extend(v.ravel() for t in tags for v in recorded[party, t])
                continue
            for i in range(len(sent[0])):
                received = [sent[j][i].ravel() for j in range(n) if j != party]
                combine = np.bitwise_xor if kinds[call] == "open_bits" else np.add
                opened = functools.reduce(combine, [sent[j][i].ravel() for j in range(n)])
                view.extend(received + [opened])
        self.events.clear()
        return view


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    for kind in ("open_shares", "open_bits", "open_to"):
        recorder.wrap(kind, getattr(comm, kind), monkeypatch)
    jax.clear_caches()  # no compiled program from before the wrapping may be reused
    yield recorder
    jax.clear_caches()


def views(recorder, protocol, secret, n, party, seed):
    """``[slots][KEYS, elements]`` uint64: party ``party``'s view of ``protocol`` on ``secret`` over many keys."""
    run = jax.jit(lambda x, k: protocol(sjax.share(x, jax.random.fold_in(k, 0), n), jax.random.fold_in(k, 1)))
    root = jax.random.key(seed)
    collected = []
    for i in range(KEYS):
        jax.block_until_ready(run(secret, jax.random.fold_in(root, i)))
        collected.append(recorder.view(party, n))
    slots = len(collected[0])
    assert all(len(v) == slots for v in collected)
    return [np.stack([v[s] for v in collected]) for s in range(slots)]


def worst_bit_statistic(view_a, view_b) -> tuple[float, float]:
    """The largest |z| of a two-proportion test over every (slot, bit), and the Bonferroni threshold."""
    assert len(view_a) == len(view_b) and view_a, "the two views differ in structure"
    bits = np.arange(64, dtype=np.uint64)
    worst, tests = 0.0, 0
    for a, b in zip(view_a, view_b):
        ones_a = ((a.reshape(-1, 1) >> bits) & np.uint64(1)).mean(axis=0)
        ones_b = ((b.reshape(-1, 1) >> bits) & np.uint64(1)).mean(axis=0)
        pooled = (ones_a + ones_b) / 2
        spread = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-300) * 2 / a.size)
        z = np.where((pooled > 0) & (pooled < 1), np.abs(ones_a - ones_b) / spread, 0.0)
        worst = max(worst, float(z.max()))
        tests += 64
    return worst, float(stats.norm.isf(ALPHA / (2 * tests)))


def uniform_words_ks(view_a, view_b) -> float:
    """p-value of a two-sample Kolmogorov-Smirnov test on the top 52 bits of every word of the views."""
    to_unit = lambda v: np.concatenate([(s.ravel() >> np.uint64(12)).astype(np.float64) for s in v]) / 2.0**52  # noqa: E731
    return float(stats.ks_2samp(to_unit(view_a), to_unit(view_b)).pvalue)


rng = np.random.default_rng(0)
SMALL = jnp.zeros(SIZE)
LARGE = jnp.asarray(rng.uniform(-1e6, 1e6, SIZE))

# Each protocol runs on a secret x; the other operand, when there is one, is a fixed secret of its own.
PROTOCOLS = {
    "mul": (lambda x, k: sjax.mul(x, x + 3.0, k), SMALL, LARGE),
    "matmul": (
        lambda x, k: sjax.matmul(x.reshape(8, 8), x.reshape(8, 8).T + 1.0, k),
        SMALL,
        LARGE / 1e3,
    ),
    "relu": (lambda x, k: sjax.relu(x, k), -jnp.abs(LARGE) - 1.0, jnp.abs(LARGE) + 1.0),
    "exp": (lambda x, k: sjax.exp(x, k), jnp.full(SIZE, -12.0), jnp.asarray(rng.uniform(0, 12, SIZE))),
}


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_a_partys_view_does_not_depend_on_the_secret(recorder, name, n):
    protocol, secret_a, secret_b = PROTOCOLS[name]
    party = n - 1  # not party 0: it receives everything the others do, and the dealer's corrections too
    view_a = views(recorder, protocol, secret_a, n, party, seed=1)
    view_b = views(recorder, protocol, secret_b, n, party, seed=2)
    assert len(view_a) >= n, "the protocol opened nothing: the recorder missed its messages"
    worst, threshold = worst_bit_statistic(view_a, view_b)
    assert worst < threshold, f"{name}: a bit of the view depends on the secret (|z| = {worst:.1f})"
    assert uniform_words_ks(view_a, view_b) > ALPHA


def test_the_test_sees_a_leak(recorder):
    """The same statistics flag ``reveal``, whose opened value is the secret."""
    leak = lambda x, k: sjax.reveal(x)  # noqa: E731
    view_a = views(recorder, leak, SMALL, 2, 1, seed=1)
    view_b = views(recorder, leak, LARGE, 2, 1, seed=2)
    worst, threshold = worst_bit_statistic(view_a, view_b)
    assert worst > threshold
    assert uniform_words_ks(view_a, view_b) < ALPHA


# -- reveal(s, to=i): the parties other than i receive nothing that depends on the secret ----------------


def _reveal_to(receiver: int):
    return lambda x, k: sjax.reveal(x, to=receiver)


def _product_revealed_to(receiver: int):
    return lambda x, k: sjax.reveal(sjax.mul(x, x + 3.0, k), to=receiver)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("make", [_reveal_to, _product_revealed_to], ids=["reveal_to", "mul_then_reveal_to"])
def test_a_non_receivers_view_of_reveal_to_does_not_depend_on_the_secret(recorder, make, n):
    receiver = 0
    for party in range(1, n):  # every party but the receiver
        view_a = views(recorder, make(receiver), SMALL, n, party, seed=1)
        view_b = views(recorder, make(receiver), LARGE, n, party, seed=2)
        # open_to delivers n - 1 messages (one ppermute per sender) and a result to every party.
        assert len(view_a) >= n, "the recorder missed open_to's messages"
        worst, threshold = worst_bit_statistic(view_a, view_b)
        assert worst < threshold, f"party {party}: a bit of its view depends on the secret (|z| {worst:.1f})"
        assert uniform_words_ks(view_a, view_b) > ALPHA


@pytest.mark.parametrize("n", [2, 3])
def test_the_receivers_view_of_reveal_to_shows_the_secret(recorder, n):
    """The control: the same recording and statistics flag the receiver, which learns the secret."""
    view_a = views(recorder, _reveal_to(n - 1), SMALL, n, n - 1, seed=1)
    view_b = views(recorder, _reveal_to(n - 1), LARGE, n, n - 1, seed=2)
    worst, threshold = worst_bit_statistic(view_a, view_b)
    assert worst > threshold
    assert uniform_words_ks(view_a, view_b) < ALPHA
