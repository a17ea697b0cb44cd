"""Saved shares: each party's file, its header checks, and a training run resumed from files bit for bit."""

import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sjax
from sjax.storage import PartyShare, assemble


def equal_trees(a, b):
    """Bit-identical pytrees of shares and arrays (same structure, same kinds, same bits)."""
    is_share = lambda x: isinstance(x, (sjax.ArithShare, sjax.BinShare))  # noqa: E731
    la, ta = jax.tree_util.tree_flatten(a, is_leaf=is_share)
    lb, tb = jax.tree_util.tree_flatten(b, is_leaf=is_share)
    assert ta == tb
    for x, y in zip(la, lb):
        assert is_share(x) == is_share(y)
        if is_share(x):  # public leaves come back as jax arrays of the same dtype and value
            assert type(x) is type(y)
        if isinstance(x, sjax.ArithShare):
            assert x.frac_bits == y.frac_bits
        xs = x.shares if is_share(x) else x
        ys = y.shares if is_share(y) else y
        assert np.asarray(xs).dtype == np.asarray(ys).dtype
        np.testing.assert_array_equal(np.asarray(xs), np.asarray(ys))


def mixed_tree(keys, n):
    return {
        "w": sjax.share(jnp.arange(6.0).reshape(2, 3) - 2.5, keys(), n),
        "hi": sjax.share(jnp.array([0.001, -3.0]), keys(), n, frac_bits=24),
        "bits": [sjax.share_bits(jnp.array([1, -7, 2**40], jnp.int64), keys(), n), None],
        "step": jnp.array(7, jnp.int32),
        "lr": (jnp.float32(0.25), np.arange(3, dtype=np.uint8)),
    }


def save_all(tmp_path, tree, n, name="state", **kwargs):
    paths = [tmp_path / f"{name}.party{i}" for i in range(n)]
    for i, path in enumerate(paths):
        sjax.save(path, tree, party=i, **kwargs)
    return paths


@pytest.mark.parametrize("n", [2, 3])
def test_round_trip_of_a_mixed_tree(tmp_path, keys, n):
    tree = mixed_tree(keys, n)
    paths = save_all(tmp_path, tree, n)
    equal_trees(sjax.load_all(paths), tree)
    # One party's file holds its own row only.
    mine = sjax.load(paths[1], party=1, n_parties=n)
    assert isinstance(mine["w"], PartyShare) and mine["w"].party == 1 and mine["w"].n_parties == n
    np.testing.assert_array_equal(mine["w"].share, tree["w"].shares[1])
    assert mine["hi"].frac_bits == 24 and mine["bits"][0].kind == "bin" and mine["bits"][1] is None
    np.testing.assert_array_equal(mine["step"], 7)
    # Every party's share is in no other party's file.
    raw = open(paths[0], "rb").read()
    assert np.asarray(tree["w"].shares[1]).tobytes() not in raw


def test_header_checks(tmp_path, keys):
    tree = {"x": sjax.share(jnp.ones(4), keys(), 3)}
    paths = save_all(tmp_path, tree, 3)
    with pytest.raises(ValueError, match=r"party=2, expected party=0"):
        sjax.load(paths[2], party=0)
    with pytest.raises(ValueError, match=r"n_parties=3, expected n_parties=2"):
        sjax.load(paths[0], party=0, n_parties=2)
    with pytest.raises(ValueError, match=r"frac_bits=16, expected frac_bits=20"):
        sjax.load(paths[0], frac_bits=20)
    with pytest.raises(ValueError, match=r"one shard of each of the 3 parties, got parties \[0, 0, 2\]"):
        assemble([sjax.load(p) for p in (paths[0], paths[0], paths[2])])
    with pytest.raises(ValueError, match=r"party=1, expected party=0"):
        sjax.load_all([paths[1], paths[0], paths[2]])
    with pytest.raises(ValueError, match="another structure than like"):
        sjax.load(paths[0], like={"y": 0})


def test_corrupted_truncated_and_foreign_files(tmp_path, keys):
    tree = {"x": sjax.share(jnp.arange(5.0), keys(), 2)}
    (path, _) = save_all(tmp_path, tree, 2)
    data = bytearray(open(path, "rb").read())

    def write(name, content):
        target = tmp_path / name
        target.write_bytes(bytes(content))
        return target

    flipped = bytearray(data)
    flipped[-40] ^= 1  # a payload bit
    with pytest.raises(ValueError, match="corrupted or was modified: its SHA-256 checksum does not match"):
        sjax.load(write("flipped", flipped))
    # A header edit that still parses (party 0 -> party 1) is caught by the checksum too.
    forged = bytes(data).replace(b'"party": 0', b'"party": 1')
    assert forged != bytes(data)
    with pytest.raises(ValueError, match="checksum does not match"):
        sjax.load(write("forged", forged))
    with pytest.raises(ValueError, match="is truncated"):
        sjax.load(write("cut", data[: len(data) - 50]))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        sjax.load(write("stub", data[:30]))
    with pytest.raises(ValueError, match="not an sjax share file"):
        sjax.load(write("other", b"\x80\x04K\x01." + bytes(data[5:])))  # a pickle's first bytes
    newer = bytearray(data)
    newer[8:12] = struct.pack("<I", 99)
    with pytest.raises(ValueError, match="format version 99"):
        sjax.load(write("newer", newer))
    # With an HMAC key, a forger who recomputes a plain SHA-256 is caught.
    keyed = save_all(tmp_path, tree, 2, name="keyed", hmac_key=b"k" * 32)[0]
    equal_trees(sjax.load_all([keyed, tmp_path / "keyed.party1"], hmac_key=b"k" * 32), tree)
    with pytest.raises(ValueError, match="pass hmac_key"):
        sjax.load(keyed)
    with pytest.raises(ValueError, match="HMAC does not match"):
        sjax.load(keyed, hmac_key=b"x" * 32)


def test_what_cannot_be_saved(tmp_path, keys):
    x = sjax.share(jnp.ones(2), keys(), 2)
    with pytest.raises(ValueError, match="pass party=i"):
        sjax.save(tmp_path / "f", {"x": x})
    with pytest.raises(ValueError, match="party 2 is out of range for shares of 2 parties"):
        sjax.save(tmp_path / "f", {"x": x}, party=2)
    with pytest.raises(TypeError, match=r"leaf \['k'\] is a PRNG key"):
        sjax.save(tmp_path / "f", {"x": x, "k": keys()}, party=0)
    with pytest.raises(TypeError, match=r"leaf \['s'\] has dtype <U3"):
        sjax.save(tmp_path / "f", {"x": x, "s": np.array("abc")}, party=0)
    with pytest.raises(ValueError, match=r"mixes shares of \[2, 3\] parties"):
        sjax.save(tmp_path / "f", [x, sjax.share(jnp.ones(2), keys(), 3)], party=0)
    assert not os.path.exists(tmp_path / "f")


# -- a training run stopped, saved, loaded and resumed -----------------------------------------------

OPTIMIZER = optax.sgd(0.5, momentum=0.9)


def train_step(state, x, y):
    """Logistic regression with SecureML's piecewise-linear sigmoid, SGD with momentum (optimizer state)."""
    params, opt_state = state
    z = x @ params["w"] + params["b"]
    error = (jnp.clip(0.5 + 0.25 * z, 0.0, 1.0) - y) / x.shape[0]
    grads = {"w": x.T @ error, "b": error.sum()}
    updates, opt_state = OPTIMIZER.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def test_training_resumed_from_saved_shares_is_bit_identical(tmp_path, n=2):
    root = jax.random.key(7)
    k_data, k_params, k_x, k_y, k_steps = jax.random.split(root, 5)
    x = jax.random.normal(k_data, (16, 4))
    y = (x @ jnp.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(jnp.float32)
    params = {"w": jnp.zeros(4, jnp.float32), "b": jnp.zeros((), jnp.float32)}
    state = sjax.nn.share_params((params, OPTIMIZER.init(params)), k_params, n_parties=n)
    sx, sy = sjax.share(x, k_x, n), sjax.share(y, k_y, n)
    step = sjax.secure(train_step)  # eager: each protocol compiles once, faster here than one big program
    steps, stop = 4, 2

    def run(state, first, last):
        for i in range(first, last):
            state = step(state, sx, sy, key=jax.random.fold_in(k_steps, i))
        return state

    straight = run(state, 0, steps)
    stopped = run(state, 0, stop)
    paths = save_all(tmp_path, (stopped, jnp.int32(stop)), n, name="checkpoint")
    del stopped
    # Each party reloads its own file against the structure it started from (optax states are namedtuples).
    like = (state, jnp.int32(0))
    for i, path in enumerate(paths):
        sjax.load(path, party=i, n_parties=n, frac_bits=16, like=like)
    restored, resume_at = sjax.load_all(paths, n_parties=n, frac_bits=16, like=like)
    assert int(resume_at) == stop
    resumed = run(restored, int(resume_at), steps)
    equal_trees(resumed, straight)
    learned = sjax.nn.reveal_params(straight[0])
    assert float(learned["w"][1]) < 0 < float(learned["w"][0])
