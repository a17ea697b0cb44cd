"""Shared test set-up: every test runs under JAX's key-reuse checker, so any key sjax uses twice fails it."""

import os

# Every program the suite compiles (jitted, eager, and in the processes it starts) at XLA's backend
# optimisation level 0 and with XLA CPU's older fusion emitters (LLVM IR directly rather than through MLIR):
# compiling dominates the suite's time, level 0 compiles about a third faster, and the older emitters
# compile the suite's small and mid-sized programs up to 1.7 times faster again (test_power.py and
# test_exponential.py, one process: 78 s -> 45 s), though the largest (test_transform's elementwise test,
# 230 000 instructions) takes 25% longer. Ring arithmetic is exact either way. Set before JAX creates its
# backend, which reads the flags once; a flag already in XLA_FLAGS is left as it is.
_FLAGS = {"--xla_backend_optimization_level": "0", "--xla_cpu_use_fusion_emitters": "false"}
_current = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_current] + [f"{flag}={value}" for flag, value in _FLAGS.items() if flag not in _current]
).strip()

import hypothesis  # noqa: E402
import jax  # noqa: E402
import pytest  # noqa: E402

import sjax  # noqa: F401  (turns on 64-bit mode before any test builds arrays)

hypothesis.settings.register_profile(
    "sjax",
    deadline=None,
    max_examples=int(os.environ.get("SJAX_HYPOTHESIS_EXAMPLES", "25")),
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.differing_executors],
    derandomize=True,
)
hypothesis.settings.load_profile("sjax")

PARTIES = (2, 3, 5)

@pytest.fixture(autouse=True, scope="module")
def _fresh_compilation_caches():
    """Drops compiled programs after each test module: a worker would otherwise hold every module's
    executables (several GB by the end of the suite on a 2-core, 24 GB CI machine)."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _no_key_reuse():
    with jax.debug_key_reuse(True):
        yield


@pytest.fixture
def keys():
    """An endless supply of fresh keys, from a fixed seed so failures reproduce."""
    root = jax.random.key(20261128)

    def generator():
        i = 0
        while True:
            yield jax.random.fold_in(root, i)
            i += 1

    stream = generator()
    return lambda: next(stream)
