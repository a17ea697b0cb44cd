"""Protocol checks run as real parties: ``python -m sjax.parallel.launch --parties N tests/processes_check.py``.

Not a pytest module: ``tests/test_processes.py`` launches it with 2 and 3 parties. Every process (the parties
and the dealer) runs this same script; each party checks what it receives against plaintext and prints
``CHECK <name> OK``; the dealer checks that it receives nothing. Any failure raises, so the launcher exits
non-zero. With ``--die-after-share RANK``, that party kills itself after sharing (the fault test). Saved
shares: every process saves its row of the trained parameters into ``--storage-dir``, loads its own file
back and places it on the mesh (bit-identical), takes the next step from it, and a party cannot load
another party's file as its own.
"""

import argparse
import os
import signal
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import sjax
from sjax import parallel

parser = argparse.ArgumentParser()
parser.add_argument("--die-after-share", type=int, default=None)
parser.add_argument("--storage-dir", default=None, help="where each process saves its shares (default: a temp dir)")
options = parser.parse_args()

me = parallel.party_index()
runtime = parallel.processes.runtime()
n = runtime.n_parties
keys = iter(jax.random.split(jax.random.key(7), 32))
rng = np.random.default_rng(0)  # the same public test data in every process; only owners use theirs
features = rng.normal(size=(8, 4))
labels = (features @ np.array([1.0, -2.0, 0.5, 1.5]) > 0).astype(np.float64)
weights = rng.normal(size=(4, 3))


def check(name, got, want, tol=2e-3):
    if me is None:
        assert got is None, f"{name}: the dealer received {got}"
        print(f"CHECK {name} OK (dealer received nothing)", flush=True)
        return
    np.testing.assert_allclose(np.asarray(got), want, atol=tol, err_msg=name)
    print(f"CHECK {name} OK", flush=True)


def owned(value, owner):
    """The owner's array, or its shape and dtype in every other process."""
    return value if me == owner else jax.ShapeDtypeStruct(value.shape, value.dtype)


x = sjax.share_from(owned(features, 0), next(keys), party=0)
w = sjax.share_from(owned(weights, n - 1), next(keys), party=n - 1)
y = sjax.share_from(owned(labels, 1), next(keys), party=1)
assert x.n_parties == n and x.shape == features.shape, x
# Each process holds one row of each share: its own.
assert len(x.shares.addressable_shards) == 1 and x.shares.addressable_shards[0].data.shape == (1, 8, 4)
print("CHECK placement OK", flush=True)

if options.die_after_share is not None and me == options.die_after_share:
    print("dying now", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if options.die_after_share is not None:
    time.sleep(2)  # the others go on into a protocol that needs the dead party
    started = time.monotonic()
    print(f"started mul at {time.time():.3f}", flush=True)

# reveal to one party only
for receiver in range(n):
    got = sjax.reveal(x, to=receiver)
    if me == receiver:
        np.testing.assert_allclose(got, features, atol=2e-5)
    else:
        assert got is None, f"party {me} received a value revealed to party {receiver}"
print("CHECK reveal_to OK", flush=True)

check("mul", sjax.reveal(sjax.mul(x, x, next(keys))), features * features)
check("matmul", sjax.reveal(sjax.matmul(x, w, next(keys))), features @ weights)
check("lt", sjax.reveal(sjax.lt(x, 0.25, next(keys))), (features < 0.25).astype(float), tol=0)
check("relu_jit", sjax.reveal(jax.jit(sjax.relu)(x, next(keys))), np.maximum(features, 0))


def loss(params, inputs, targets):
    # Least squares: a training step whose gradient is products only, so that every process compiles it
    # in seconds (the nonlinear functions are the same protocols as above, checked on devices and simulated).
    residual = inputs @ params["w"] + params["b"] - targets
    return jnp.mean(residual * residual)


def step(params, inputs, targets):
    grads = jax.grad(loss)(params, inputs, targets)
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)


params = {"w": np.zeros(4), "b": np.zeros(())}
secret_params = {
    "w": sjax.share(params["w"], next(keys), n),
    "b": sjax.share(params["b"], next(keys), n),
}
new = jax.jit(sjax.secure(step))(secret_params, x, y, key=next(keys))
want = step(params, features, labels)
check("train_step_w", sjax.reveal(new["w"]), want["w"])
check("train_step_b", sjax.reveal(new["b"]), want["b"])

# Saved shares: each process (the dealer too: its row holds zeros) writes its own row, reads its own file
# back and places it on the mesh; a run resumed from it continues as one that did not stop.
folder = options.storage_dir or os.path.join(tempfile.gettempdir(), f"sjax-processes-check-{os.getppid()}")
os.makedirs(folder, exist_ok=True)
own_file = os.path.join(folder, f"slot{runtime.rank}.sjax")
sjax.save(own_file, new)
resumed = sjax.storage.place(sjax.load(own_file, party=me, n_parties=n))
for name in new:
    saved_row = parallel.processes.local_array(new[name].shares)
    assert np.array_equal(parallel.processes.local_array(resumed[name].shares), saved_row), name
print("CHECK save_load_place OK", flush=True)
again = jax.jit(sjax.secure(step))(resumed, x, y, key=next(keys))
check("resumed_step_w", sjax.reveal(again["w"]), step(want, features, labels)["w"])
if me is not None:  # every file exists now: the step above needed every process
    foreign = os.path.join(folder, f"slot{(me + 1) % n}.sjax")
    try:
        sjax.load(foreign, party=me, n_parties=n)
    except ValueError as error:
        assert f"expected party={me}" in str(error), error
    else:
        raise AssertionError(f"party {me} loaded party {(me + 1) % n}'s file as its own")
    print("CHECK foreign_file_refused OK", flush=True)
sjax.reveal(x)  # every process is past its reads before the files go
os.remove(own_file)
print("ALL OK", flush=True)
