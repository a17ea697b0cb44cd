"""What one party receives does not depend on the secrets: statistical tests on its view.

A party's view of a protocol is every message it receives: the other parties' shares of every value opened
(``comm.open_shares``, ``open_bits``, ``open_to``) and the opened result itself. The communication layer is
wrapped with a recorder (a debug callback inside the SPMD body reports what each party sends), the protocol
is run with many keys on two very different secrets, and for every message slot and every bit the
frequency of ones under the first secret is compared with the frequency under the second: a two-sample
test per bit, Bonferroni-corrected, at a fixed seed. A control checks that the test sees a real leak (the
view of ``reveal``, which opens the secret itself).

The dealer's corrections to party 0 are computed from key material alone, so they are not part of what
could depend on a secret, and are not recorded here.
"""

from __future__ import annotations

import functools

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


class Recorder:
    """Wraps the opening functions of :mod:`sjax.comm`; collects, per opening, what every party sent."""

    def __init__(self):
        self.events: list[tuple[str, int, int, list[np.ndarray]]] = []
        self.calls = 0

    def wrap(self, kind: str, original, monkeypatch):
        def recording(*args):
            shares = args[1:] if kind == "open_to" else args
            call = self.calls
            self.calls += 1

            def record(party, *values):
                self.events.append((kind, call, int(party), [np.asarray(v) for v in values]))

            jax.debug.callback(record, comm.party_index(), *shares)
            return original(*args)

        monkeypatch.setattr(comm, kind, recording)

    def view(self, party: int, n: int) -> list[np.ndarray]:
        """Party ``party``'s view: what each other party sent it, then the opened value, per opening."""
        jax.effects_barrier()
        by_call: dict[int, dict[int, list[np.ndarray]]] = {}
        kinds = {}
        for kind, call, sender, values in self.events:
            by_call.setdefault(call, {})[sender] = values
            kinds[call] = kind
        view = []
        for call in sorted(by_call):
            sent = by_call[call]
            assert sorted(sent) == list(range(n)), f"opening {call}: messages from parties {sorted(sent)}"
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
