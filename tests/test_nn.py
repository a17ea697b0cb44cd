"""Tests for :mod:`sjax.nn`: parameters to and from shares, layers, activations and losses.

* **Reference.** Every layer and loss is compared with plaintext flax (``Dense``, ``Conv``, ``max_pool``,
  ``avg_pool``, ``BatchNorm``, ``LayerNorm``), ``jax.nn`` or optax (``squared_error``,
  ``sigmoid_binary_cross_entropy``, ``softmax_cross_entropy``) in float64, on inputs that are already on the
  fixed-point grid (multiples of ``2**-16``), so that the error measured is the protocol's own and not the
  rounding of its inputs. Public floating operands are on the grid too, so their encoding is exact, except
  where a layer computes a public constant itself (batch norm's ``scale / sqrt(var + eps)``, dropout's
  ``1 / (1 - rate)``): there the tolerance includes its rounding. Each check states its tolerance in units
  of ``ULP = 2**-16``, from the error bound in the function's docstring. Exceptions, whose tolerance adds
  the encoding of the off-grid values: the smoothed labels of softmax_cross_entropy, and the flax CNN run on
  secret variables (:func:`share_params` of float32 ``params`` and ``batch_stats``), whose reference runs
  on the variables as encoded and whose tolerance propagates each layer's bound.
* **Parties.** 2 and 3. **Jitted.** Compilation dominates the run time, so each number of parties compiles
  ONE program (:func:`results_for`, cached for the session) that shares the inputs, runs every layer and
  loss and reveals the results; the tests then check their entries. The variants of a function (public or
  secret operands, padding modes, label types) are split between the two party counts (``VARIANTS``): the
  protocols differ between party counts only in their openings, which every variant exercises. Labels go
  through one :func:`sjax.mul` / :func:`sjax.matmul` whatever their kind (the primitive picks the exact
  local product for public integers), so one public and one secret kind per loss cover the code. Compiled at XLA's
  backend optimisation level 0, as the nonlinear tests do: ring arithmetic is exact at any level.
* **Parameters.** :func:`sjax.nn.share_params` / :func:`sjax.nn.reveal_params` round trip on a flax CNN's
  ``params`` and ``batch_stats``; determinism per key; integer leaves; the error messages.
* **Costs** of the cheap layers against their docstrings, read off traces of abstract shares.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sjax
import sjax.nn as snn

FRAC = 16
ULP = 2.0**-FRAC
PARTIES = (2, 3)
CLASSES = 5  # odd: log_softmax's tree of maxima carries an element over at two of its three levels
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def grid(values) -> np.ndarray:
    """Values rounded onto the fixed-point grid, so that sharing them is exact."""
    return np.round(np.asarray(values, dtype=np.float64) * 2.0**FRAC) / 2.0**FRAC


def _inputs(n: int) -> dict:
    """The plaintext inputs of one party count's program (all on the grid)."""
    rng = np.random.default_rng(100 + n)
    signs = rng.choice([-1.0, 1.0], size=(16, 32))
    d = {
        "x": grid(rng.normal(size=(4, 6))),  # dense input
        "kernel": grid(rng.normal(size=(6, 3)) * 0.5),
        "bias": grid(rng.normal(size=3)),
        "image": grid(rng.normal(size=(2, 6, 6, 2))),  # conv and pooling input
        "conv_kernel": grid(rng.normal(size=(3, 3, 2, 4)) * 0.4),
        "conv_bias": grid(rng.normal(size=4)),
        "seq": grid(rng.normal(size=(7, 3))),  # unbatched 1-D pooling input
        "features": grid(rng.normal(size=(4, 5)) * 2 + 1),  # normalisation input
        "mean": grid(rng.normal(size=5)),
        "var": grid(rng.uniform(0.5, 3.0, size=5)),
        "scale": grid(rng.normal(size=5)),
        "shift": grid(rng.normal(size=5)),
        "drop": grid(signs * rng.uniform(0.5, 2.0, size=(16, 32))),  # no zeros: dropped ones show
        "act": grid(np.linspace(-8, 8, 41)),  # activations
        "pred": grid(rng.normal(size=(8, 3))),
        "target": grid(rng.normal(size=(8, 3))),
        "logit": grid(np.concatenate([rng.normal(size=(12, 1)) * 4, [[-20.0], [20.0], [0.0], [1e-3]]])),
        "binary": rng.integers(0, 2, size=(16, 1)),
        "logits": grid(rng.normal(size=(6, CLASSES)) * 3),
        "classes": rng.integers(0, CLASSES, size=6),
    }
    d["soft"] = grid(rng.uniform(0, 1, size=(16, 1)))  # soft binary labels
    return d


# Which variants each party count runs (see the module docstring).
VARIANTS = {
    2: dict(dense_public="kernel", conv_public="kernel", conv=((2, 2), "SAME"),
            pool=((2, 2), (2, 2), "VALID"), bn_secret="all", ln_scale="secret", activation="softplus",
            mse_target="secret", bce_labels=("int",), ce_labels=("int",), cnn=False),
    3: dict(dense_public="x", conv_public="x", conv=((1, 1), "VALID"), pool=((3, 2), (2, 1), "SAME"),
            bn_secret="scale", ln_scale="public", activation="gelu_tanh", mse_target="public",
            bce_labels=("secret",), ce_labels=("secret",), cnn=True),
}  # fmt: skip
DROPOUT_SEED = 77  # the same dropout key for both party counts: the public mask must not depend on n


class _CNN(nn.Module):
    """A small flax CNN: conv, batch norm (inference), relu, average pooling, dense."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, (2, 2), (2, 2))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


def _cnn_variables():
    """The CNN's variables (float32, off the fixed-point grid), with non-trivial batch norm statistics."""
    variables = _CNN().init(jax.random.key(5), jnp.ones((1, 6, 6, 2)))
    rng = np.random.default_rng(9)
    variables["batch_stats"]["BatchNorm_0"] = {
        "mean": jnp.asarray(rng.normal(size=4) * 0.3, jnp.float32),
        "var": jnp.asarray(rng.uniform(0.5, 2.0, size=4), jnp.float32),
    }
    variables["params"]["BatchNorm_0"] = {
        "scale": jnp.asarray(rng.uniform(0.5, 1.5, size=4), jnp.float32),
        "bias": jnp.asarray(rng.normal(size=4) * 0.3, jnp.float32),
    }
    return variables


def _secret_cnn(image, variables, keys):
    """The CNN's forward pass with sjax.nn layers on secret variables."""
    p, stats = variables["params"], variables["batch_stats"]
    h = snn.conv(image, p["Conv_0"]["kernel"], p["Conv_0"]["bias"], key=next(keys))
    bn, bn_stats = p["BatchNorm_0"], stats["BatchNorm_0"]
    h = snn.batch_norm(h, bn_stats["mean"], bn_stats["var"], bn["scale"], bn["bias"], key=next(keys))
    h = snn.relu(h, key=next(keys))
    h = snn.avg_pool(h, (2, 2), (2, 2), key=next(keys))
    return snn.dense(h.reshape(h.shape[0], -1), p["Dense_0"]["kernel"], p["Dense_0"]["bias"], key=next(keys))


def _program(n: int, d: dict):
    """The one jitted program of a party count: shares the inputs, runs every layer and loss, reveals."""
    v = VARIANTS[n]

    def run(d, variables, key):
        keys = iter(jax.random.split(key, 64))
        s = {name: sjax.share(value, next(keys), n_parties=n) for name, value in d.items()
             if name not in ("binary", "classes")}  # fmt: skip
        out = {}
        out["dense"] = snn.dense(s["x"], s["kernel"], s["bias"], key=next(keys))
        if v["dense_public"] == "kernel":
            out["dense_public"] = snn.dense(s["x"], d["kernel"], d["bias"], key=next(keys))
        else:
            out["dense_public"] = snn.dense(d["x"], s["kernel"], d["bias"], key=next(keys))
        strides, padding = v["conv"]
        out["conv"] = snn.conv(s["image"], s["conv_kernel"], s["conv_bias"], key=next(keys), strides=strides,
                               padding=padding)  # fmt: skip
        if v["conv_public"] == "kernel":
            out["conv_public"] = snn.conv(s["image"], d["conv_kernel"], key=next(keys), strides=strides,
                                          padding=padding)  # fmt: skip
        else:
            out["conv_public"] = snn.conv(d["image"], s["conv_kernel"], key=next(keys), strides=strides,
                                          padding=padding)  # fmt: skip
        window, pool_strides, pool_padding = v["pool"]
        out["max_pool"] = snn.max_pool(s["image"], window, pool_strides, pool_padding, key=next(keys))
        out["avg_pool"] = snn.avg_pool(s["image"], window, pool_strides, pool_padding, key=next(keys))
        out["avg_pool_exclude"] = snn.avg_pool(s["image"], (3, 3), None, "SAME", count_include_pad=False,
                                               key=next(keys))  # fmt: skip
        out["max_pool_1d"] = snn.max_pool(s["seq"], (3,), (2,), "SAME", key=next(keys))
        out["avg_pool_1d"] = snn.avg_pool(s["seq"], (2,), None, ((1, 1),), count_include_pad=False,
                                          key=next(keys))  # fmt: skip
        out["bn_public"] = snn.batch_norm(s["features"], d["mean"], d["var"], d["scale"], d["shift"],
                                          key=next(keys))  # fmt: skip
        if v["bn_secret"] == "all":
            out["bn_secret"] = snn.batch_norm(s["features"], s["mean"], s["var"], s["scale"], s["shift"],
                                              key=next(keys))  # fmt: skip
        else:
            out["bn_secret"] = snn.batch_norm(s["features"], d["mean"], d["var"], s["scale"], s["shift"],
                                              key=next(keys))  # fmt: skip
        scale = s["scale"] if v["ln_scale"] == "secret" else d["scale"]
        out["layer_norm"] = snn.layer_norm(s["features"], scale, d["shift"], key=next(keys))
        dropout_key = jax.random.key(DROPOUT_SEED)
        half_key, third_key = jax.random.split(dropout_key)
        out["dropout_half"] = snn.dropout(s["drop"], 0.5, key=half_key)
        out["dropout_third"] = snn.dropout(s["drop"], 0.3, key=third_key)
        if v["activation"] == "gelu_tanh":
            out["gelu_tanh"] = snn.gelu(s["act"], next(keys), approximate=True)
        else:
            out["softplus"] = snn.softplus(s["act"], key=next(keys))
        target = s["target"] if v["mse_target"] == "secret" else d["target"]
        out["mse"] = snn.mean_squared_error(s["pred"], target, key=next(keys))
        bce_labels = {"int": d["binary"], "secret": s["soft"]}
        for kind in v["bce_labels"]:
            out[f"bce_{kind}"] = snn.binary_cross_entropy_with_logits(
                s["logit"], bce_labels[kind], key=next(keys)
            )
        one_hot = jax.nn.one_hot(d["classes"], CLASSES, dtype=jnp.int64)
        ce_labels = {"int": one_hot, "secret": s["smoothed"]}
        for kind in v["ce_labels"]:
            out[f"ce_{kind}"] = snn.softmax_cross_entropy(s["logits"], ce_labels[kind], key=next(keys))
        opened = {}
        if v["cnn"]:
            shared = snn.share_params(variables, next(keys), n)
            out["cnn"] = _secret_cnn(s["image"], shared, keys)
            opened = snn.reveal_params(shared)
        return {name: sjax.reveal(value) for name, value in out.items()}, opened

    return run


@functools.lru_cache(maxsize=None)
def results_for(n: int) -> tuple[dict, dict]:
    """``(inputs, revealed outputs)`` of the party count's program, compiled and run once per session."""
    d = _inputs(n)
    # Smoothed labels (not one-hot, not on the grid: their encoding error is in the tolerance).
    d["smoothed"] = np.asarray(optax.smooth_labels(np.eye(CLASSES)[d["classes"]], 0.1))
    with jax.debug_key_reuse(True):
        out, opened = jit(_program(n, d))(d, _cnn_variables(), jax.random.key(1000 + n))
    d["cnn_variables"] = opened  # as encoded: the reference runs on exactly what was shared
    return d, {name: np.asarray(value) for name, value in out.items()}


def check(y, ref, tol, what: str) -> None:
    """``|y - ref| <= tol`` elementwise (``tol`` may be an array), with the worst element in the message."""
    y, ref = np.asarray(y), np.asarray(ref)
    assert y.shape == ref.shape, f"{what}: shape {y.shape}, expected {ref.shape}"
    excess = np.abs(y - ref) - np.broadcast_to(tol, ref.shape)
    worst = int(np.argmax(excess))
    assert excess.flat[worst] <= 0, (
        f"{what}: error {np.abs(y - ref).flat[worst]:.3g} at flat index {worst} exceeds the tolerance "
        f"{np.broadcast_to(tol, ref.shape).flat[worst]:.3g} (y={y.flat[worst]}, ref={ref.flat[worst]})"
    )


# -- layers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_dense(n):
    d, out = results_for(n)
    layer = nn.Dense(3)
    ref = layer.apply({"params": {"kernel": d["kernel"], "bias": d["bias"]}}, d["x"])
    # One truncation of the exact sum of products, whichever operand is public (all on the grid): < 1 ULP.
    check(out["dense"], ref, ULP, "dense, secret x, kernel and bias")
    check(out["dense_public"], ref, ULP, f"dense, public {VARIANTS[n]['dense_public']}")


@pytest.mark.parametrize("n", PARTIES)
def test_conv(n):
    d, out = results_for(n)
    strides, padding = VARIANTS[n]["conv"]
    params = {"kernel": d["conv_kernel"], "bias": d["conv_bias"]}
    ref = nn.Conv(4, (3, 3), strides=strides, padding=padding).apply({"params": params}, d["image"])
    ref_no_bias = nn.Conv(4, (3, 3), strides=strides, padding=padding, use_bias=False).apply(
        {"params": {"kernel": d["conv_kernel"]}}, d["image"]
    )
    check(out["conv"], ref, ULP, f"conv {strides} {padding}")  # one truncation per output
    check(out["conv_public"], ref_no_bias, ULP, f"conv, public {VARIANTS[n]['conv_public']}")


@pytest.mark.parametrize("n", PARTIES)
def test_pooling(n):
    d, out = results_for(n)
    window, strides, padding = VARIANTS[n]["pool"]
    # Max pooling is exact; average pooling within sjax.mean's bound |avg| ULP / 2 + ULP.
    check(out["max_pool"], nn.max_pool(d["image"], window, strides, padding), 0.0, "max_pool")
    ref = nn.avg_pool(d["image"], window, strides, padding)
    check(out["avg_pool"], ref, np.abs(ref) * ULP / 2 + ULP, "avg_pool")
    ref = nn.avg_pool(d["image"], (3, 3), None, "SAME", count_include_pad=False)
    check(out["avg_pool_exclude"], ref, np.abs(ref) * ULP / 2 + ULP, "avg_pool, count_include_pad=False")
    # 1-D windows on an unbatched [length, features] input.
    check(out["max_pool_1d"], nn.max_pool(d["seq"], (3,), (2,), "SAME"), 0.0, "max_pool 1-D")
    ref = nn.avg_pool(d["seq"], (2,), None, ((1, 1),), count_include_pad=False)
    check(out["avg_pool_1d"], ref, np.abs(ref) * ULP / 2 + ULP, "avg_pool 1-D")


def _flax_batch_norm(d):
    variables = {"params": {"scale": d["scale"], "bias": d["shift"]},
                 "batch_stats": {"mean": d["mean"], "var": d["var"]}}  # fmt: skip
    return nn.BatchNorm(use_running_average=True).apply(variables, d["features"])


@pytest.mark.parametrize("n", PARTIES)
def test_batch_norm(n):
    d, out = results_for(n)
    ref = _flax_batch_norm(d)
    centred = np.abs(d["features"] - d["mean"])
    # Public statistics: (x - mean) * a + bias with a = scale / sqrt(var + eps) encoded (half a ULP), one
    # truncation (one ULP).
    check(out["bn_public"], ref, centred * ULP / 2 + ULP, "batch_norm, public statistics")
    # Secret variance: rsqrt (relative 2^-23 plus one ULP, and eps = 1e-5 encoded as one ULP: a relative
    # change of 0.5 * 5e-6 / var), its product with the scale (one ULP), the product with x - mean (one
    # ULP). Public variance, secret scale: the same without rsqrt.
    factor_error = np.abs(d["scale"]) * (ULP + 2e-6) + ULP
    what = f"batch_norm, secret {VARIANTS[n]['bn_secret']}"
    check(out["bn_secret"], ref, centred * factor_error + 2 * ULP, what)


@pytest.mark.parametrize("n", PARTIES)
def test_layer_norm(n):
    d, out = results_for(n)
    ref = nn.LayerNorm().apply({"params": {"scale": d["scale"], "bias": d["shift"]}}, d["features"])
    # sjax.layer_norm: a few ULP on the normalised values, times |scale|, plus the product's truncation.
    what = f"layer_norm, {VARIANTS[n]['ln_scale']} scale"
    check(out["layer_norm"], ref, 4 * ULP * np.abs(d["scale"]) + ULP, what)


def test_dropout_mask_is_public_and_scaled():
    masks = []
    for n in PARTIES:
        d, out = results_for(n)
        x = d["drop"]
        for name, rate in (("dropout_half", 0.5), ("dropout_third", 0.3)):
            y = out[name]
            kept = y != 0
            assert abs(kept.mean() - (1 - rate)) < 0.05, f"{name}: kept {kept.mean():.3f}, not {1 - rate}"
            if rate == 0.5:  # the factor 2 is an integer: exact, no truncation
                check(y[kept], 2 * x[kept], 0.0, name)
            else:  # 1 / 0.7 encoded (half a ULP, times |x|) and one truncation
                check(y[kept], x[kept] / 0.7, np.abs(x[kept]) * ULP / 2 + ULP, name)
            masks.append((name, kept))
    # The mask comes from the key alone: the same for 2 and 3 parties.
    assert np.array_equal(masks[0][1], masks[2][1]) and np.array_equal(masks[1][1], masks[3][1])
    assert not np.array_equal(masks[0][1], masks[1][1])


def test_dropout_special_rates(keys):
    x = sjax.share(np.ones(4), keys(), n_parties=2)
    assert snn.dropout(x, 0.5, deterministic=True) is x
    assert snn.dropout(x, 0.0) is x
    assert np.array_equal(sjax.reveal(snn.dropout(x, 1.0, key=keys())), np.zeros(4))


def test_flax_cnn_on_secret_variables():
    """A flax CNN's variables, shared with share_params, through sjax.nn's layers: against model.apply."""
    d, out = results_for(3)
    variables = d["cnn_variables"]
    ref = _CNN().apply(variables, d["image"])
    # Error of the hidden features: conv (1 ULP, times the batch norm factor a), batch norm with secret
    # statistics (as test_batch_norm), relu (exact), average pooling (|h| ULP / 2 + ULP). The dense layer
    # multiplies it by each output's column sum of |W| and adds one truncation.
    p, stats = variables["params"], variables["batch_stats"]["BatchNorm_0"]
    conv = nn.Conv(4, (3, 3)).apply({"params": p["Conv_0"]}, d["image"])
    a = np.abs(p["BatchNorm_0"]["scale"]) / np.sqrt(stats["var"] + 1e-5)
    factor_error = np.abs(p["BatchNorm_0"]["scale"]) * (ULP + 2e-6) + ULP
    normalised = (conv - stats["mean"]) * a + p["BatchNorm_0"]["bias"]
    hidden = np.max(np.abs(conv - stats["mean"]) * factor_error + 2 * ULP + a * ULP)
    hidden += np.max(np.abs(normalised)) * ULP / 2 + ULP
    tol = np.abs(np.asarray(p["Dense_0"]["kernel"])).sum(axis=0) * hidden + ULP
    check(out["cnn"], ref, tol, "flax CNN on secret variables")
    assert np.array_equal(np.argmax(out["cnn"], -1), np.argmax(ref, -1))


# -- activations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_activations(n):
    d, out = results_for(n)
    a = d["act"]
    if VARIANTS[n]["activation"] == "gelu_tanh":
        # tanh-approximated gelu (flax's default): docstring bound (|x| + 2) ULP.
        check(out["gelu_tanh"], jax.nn.gelu(a, approximate=True), (np.abs(a) + 2) * ULP, "gelu, approximate")
    else:
        check(out["softplus"], jax.nn.softplus(a), 3 * ULP, "softplus")  # docstring: below 3 ULP


def test_reexported_activations_are_the_primitives():
    for name in ("relu", "sigmoid", "silu", "tanh", "softmax", "log_softmax"):
        assert getattr(snn, name) is getattr(sjax, name), name


# -- losses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_mean_squared_error(n):
    d, out = results_for(n)
    ref = jnp.mean(optax.squared_error(d["pred"], d["target"]))
    check(out["mse"], ref, 2 * ULP + ref * ULP / 2, f"mean_squared_error, {VARIANTS[n]['mse_target']} target")


@pytest.mark.parametrize("n", PARTIES)
def test_binary_cross_entropy_with_logits(n):
    d, out = results_for(n)
    for kind in VARIANTS[n]["bce_labels"]:
        labels = d["binary"].astype(np.float64) if kind == "int" else d["soft"]  # soft labels in [0, 1]
        ref = jnp.mean(optax.sigmoid_binary_cross_entropy(d["logit"], labels))
        check(out[f"bce_{kind}"], ref, 4 * ULP, f"binary_cross_entropy_with_logits, {kind} labels")


@pytest.mark.parametrize("n", PARTIES)
def test_softmax_cross_entropy(n):
    d, out = results_for(n)
    one_hot = np.eye(CLASSES)[d["classes"]]
    for kind in VARIANTS[n]["ce_labels"]:
        labels = d["smoothed"] if kind == "secret" else one_hot  # the secret labels are smoothed
        ref = jnp.mean(optax.softmax_cross_entropy(d["logits"], labels))
        # log_softmax (one ULP plus L 2^-30), one truncation per row and the mean's; smoothed labels are
        # off the grid: encoded with half a ULP each, times |log_softmax| (below 20 here).
        tol = 3 * ULP + CLASSES * 2.0**-30 + (CLASSES * 20 * ULP / 2 if kind == "secret" else 0)
        check(out[f"ce_{kind}"], ref, tol, f"softmax_cross_entropy, {kind} labels")


# -- parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", PARTIES)
def test_share_params_round_trip(n, keys):
    variables = _cnn_variables()
    # Jitted (one compilation for the whole tree); the eager path is exercised by the tests below.
    shared = jax.jit(snn.share_params, static_argnums=2)(variables, keys(), n)
    is_share = lambda v: isinstance(v, sjax.ArithShare)  # noqa: E731
    assert jax.tree_util.tree_structure(shared, is_leaf=is_share) == jax.tree_util.tree_structure(variables)
    for leaf, original in zip(jax.tree_util.tree_leaves(shared, is_leaf=is_share),
                              jax.tree_util.tree_leaves(variables)):  # fmt: skip
        assert is_share(leaf) and leaf.shape == original.shape
        assert leaf.n_parties == n and leaf.frac_bits == 16
    back = jax.jit(snn.reveal_params)(shared)
    originals = jax.tree_util.tree_leaves(variables)
    for (path, leaf), original in zip(jax.tree_util.tree_leaves_with_path(back), originals):
        assert leaf.dtype == jnp.float64, jax.tree_util.keystr(path)
        check(leaf, np.asarray(original, np.float64), ULP / 2, f"round trip of {jax.tree_util.keystr(path)}")
    as_float32 = jax.jit(functools.partial(snn.reveal_params, dtype=jnp.float32))(shared)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(as_float32))


def test_share_params_keys_and_frac_bits():
    params = {"a": np.array([0.5, -1.25]), "b": {"c": np.float32(3.0)}}
    first = snn.share_params(params, jax.random.key(3), 2, frac_bits=20)
    again = snn.share_params(params, jax.random.key(3), 2, frac_bits=20)
    other = snn.share_params(params, jax.random.key(4), 2, frac_bits=20)
    for x, y, z in zip(*(jax.tree_util.tree_leaves(t) for t in (first, again, other))):
        assert np.array_equal(x, y)  # the same key: the same shares, bit for bit
        assert not np.array_equal(x[0], z[0])  # another key: other shares
    assert first["a"].frac_bits == 20
    # one key per leaf: equal values in two leaves get unrelated shares
    twins = snn.share_params({"p": np.ones(3), "q": np.ones(3)}, jax.random.key(6), 2)
    assert not np.array_equal(twins["p"].shares, twins["q"].shares)
    revealed = snn.reveal_params({"s": first["a"], "public": np.arange(3), "none": None})
    check(revealed["s"], params["a"], 0.0, "reveal_params")
    assert revealed["public"] is not None and np.array_equal(revealed["public"], np.arange(3))
    assert revealed["none"] is None


def test_share_params_integer_leaves(keys):
    state = {"count": jnp.array(7, dtype=jnp.int32), "mu": {"w": jnp.ones(2)}}
    with pytest.raises(TypeError, match=r"\['count'\] has dtype int32.*integer_leaves='public'"):
        snn.share_params(state, keys(), 2)
    kept = snn.share_params(state, keys(), 2, integer_leaves="public")
    assert kept["count"] is state["count"] and isinstance(kept["mu"]["w"], sjax.ArithShare)
    assert snn.reveal_params(kept)["count"] is state["count"]
    with pytest.raises(ValueError, match="integer_leaves must be 'error' or 'public'"):
        snn.share_params(state, keys(), 2, integer_leaves="share")


def test_share_params_errors(keys):
    params = {"w": np.ones(2)}
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        snn.share_params(params, 0, 2)
    with pytest.raises(ValueError, match="n_parties must be at least 2"):
        snn.share_params(params, keys(), 1)
    with pytest.raises(TypeError, match="n_parties must be an int"):
        snn.share_params(params, keys(), "3")
    with pytest.raises(ValueError, match=r"leaf \['w'\]: cannot share NaN"):
        snn.share_params({"w": np.array([np.nan])}, keys(), 2)
    with pytest.raises(ValueError, match=r"leaf \['w'\]: value .* outside the representable range"):
        snn.share_params({"w": np.array([1e15])}, keys(), 2)
    with pytest.raises(TypeError, match=r"leaf \['w'\] is already a ArithShare"):
        snn.share_params({"w": sjax.share(np.ones(2), keys(), 2)}, keys(), 2)
    with pytest.raises(TypeError, match=r"leaf \['w'\] has dtype <U|leaf \['w'\] .*not a numeric"):
        snn.share_params({"w": np.array(["a"])}, keys(), 2)
    assert snn.share_params({}, keys(), 2) == {}


# -- errors of the layers and losses ------------------------------------------------------------------


def test_layer_errors(keys):
    x = sjax.share(np.ones((2, 4, 4, 1)), keys(), n_parties=2)
    v = sjax.share(np.ones((2, 3)), keys(), n_parties=2)
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        snn.dense(v, np.ones((3, 2)), key=0)
    with pytest.raises(TypeError, match="dense needs at least one ArithShare among x, kernel"):
        snn.dense(np.ones((2, 3)), np.ones((3, 2)), key=keys())
    with pytest.raises(ValueError, match=r"kernel must be \[in, out\]"):
        snn.dense(v, np.ones(3), key=keys())
    with pytest.raises(ValueError, match="input's last axis must be 4"):
        snn.dense(v, np.ones((4, 2)), key=keys())
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        snn.dense(v, np.ones((3, 2)), np.ones(3), key=keys())
    with pytest.raises(ValueError, match="padding must be 'SAME', 'VALID'"):
        snn.conv(x, np.ones((3, 3, 1, 2)), key=keys(), padding="CIRCULAR")
    with pytest.raises(ValueError, match="input has 1 channels but the kernel expects 2"):
        snn.conv(x, np.ones((3, 3, 2, 2)), key=keys())
    with pytest.raises(TypeError, match="max_pool takes an ArithShare"):
        snn.max_pool(np.ones((2, 4, 4, 1)), (2, 2), key=keys())
    with pytest.raises(ValueError, match="pooling over 3 spatial axes is not supported"):
        snn.avg_pool(x, (2, 2, 2), key=keys())
    with pytest.raises(ValueError, match="a 1-D window needs an input of rank 3"):
        snn.max_pool(x, (2,), key=keys())
    with pytest.raises(ValueError, match="strides .* one entry per window axis"):
        snn.avg_pool(x, (2, 2), (1,), key=keys())
    with pytest.raises(ValueError, match="padding needs 2 \\(low, high\\) pairs"):
        snn.max_pool(x, (2, 2), padding=((1, 1),), key=keys())
    with pytest.raises(TypeError, match="batch_norm needs at least one ArithShare"):
        snn.batch_norm(np.ones(3), np.zeros(3), np.ones(3), key=keys())
    with pytest.raises(ValueError, match=r"batch_norm: mean of shape \(4,\) does not broadcast"):
        snn.batch_norm(v, np.zeros(4), np.ones(3), key=keys())
    with pytest.raises(TypeError, match="layer_norm takes an ArithShare"):
        snn.layer_norm(np.ones(3), key=keys())
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        snn.dropout(v, 1.5, key=keys())
    with pytest.raises(TypeError, match="dropout needs a key unless deterministic"):
        snn.dropout(v, 0.5)
    with pytest.raises(TypeError, match="rate must be a static Python number"):
        jax.jit(lambda r: snn.dropout(v, r, key=jax.random.key(0)))(0.5)
    with pytest.raises(TypeError, match="dropout takes an ArithShare"):
        snn.dropout(np.ones(3), 0.5, key=keys())


def test_loss_errors(keys):
    v = sjax.share(np.ones((2, 3)), keys(), n_parties=2)
    with pytest.raises(TypeError, match="mean_squared_error needs at least one ArithShare"):
        snn.mean_squared_error(np.ones(3), np.ones(3), key=keys())
    with pytest.raises(ValueError, match=r"pred of shape \(2, 3\) and target of shape \(3,\) differ"):
        snn.mean_squared_error(v, np.ones(3), key=keys())
    with pytest.raises(TypeError, match="takes logits as an ArithShare"):
        snn.binary_cross_entropy_with_logits(np.ones(3), v, key=keys())
    with pytest.raises(ValueError, match="logits of shape .* and labels of shape .* differ"):
        snn.softmax_cross_entropy(v, np.ones((2, 4)), key=keys())
    with pytest.raises(TypeError, match="must be a JAX PRNG key"):
        snn.softmax_cross_entropy(v, np.ones((2, 3)), key=np.ones(2))


# -- costs ---------------------------------------------------------------------------------------------


def _abstract(shape, n):
    return sjax.ArithShare(jax.ShapeDtypeStruct((n, *shape), jnp.uint64))


@pytest.mark.parametrize("n", PARTIES)
def test_costs(n):
    key = jax.random.key(0)
    m = n - 1

    def cost(f, *args):
        c = sjax.cost(f)(*args, key)
        return c.rounds, c.bytes_per_party

    dense = cost(lambda x, w, k: snn.dense(x, w, key=k), _abstract((64, 64), n), _abstract((64, 32), n))
    assert dense == (2, 8 * m * (64 * 64 + 64 * 32 + 64 * 32))
    public = cost(lambda x, k: snn.dense(x, jnp.ones((64, 32)), key=k), _abstract((64, 64), n))
    assert public == (1, 8 * m * 64 * 32)
    assert cost(lambda x, k: snn.dense(x, jnp.ones((64, 32), int), key=k), _abstract((64, 64), n)) == (0, 0)
    conv = cost(lambda x, w, k: snn.conv(x, w, key=k), _abstract((8, 8, 8, 1), n), _abstract((3, 3, 1, 4), n))
    assert conv == (2, 8 * m * (512 + 36 + 2048))
    image = _abstract((2, 8, 8, 4), n)
    assert cost(lambda x, k: snn.max_pool(x, (2, 2), (2, 2), key=k), image) == (18, 54.125 * m * 3 * 128)
    assert cost(lambda x, k: snn.avg_pool(x, (2, 2), (2, 2), key=k), image) == (1, 8 * m * 128)
    exclude = cost(lambda x, k: snn.avg_pool(x, (3, 3), None, "SAME", False, key=k), image)
    assert exclude == (1, 8 * m * 512)
    ones = jnp.ones(32)
    features = _abstract((64, 32), n)
    assert cost(lambda x, k: snn.batch_norm(x, ones, ones, ones, ones, key=k), features) == (1, 8 * m * 2048)
    secret_scale = cost(lambda x, s, k: snn.batch_norm(x, ones, ones, s, ones, key=k), features,
                        _abstract((32,), n))  # fmt: skip
    assert secret_scale[0] == 3
    assert cost(lambda x, k: snn.dropout(x, 0.5, key=k), features) == (0, 0)
    assert cost(lambda x, k: snn.dropout(x, 0.3, key=k), features) == (1, 8 * m * 2048)
    mse = cost(lambda x, k: snn.mean_squared_error(x, jnp.ones((64, 10)), key=k), _abstract((64, 10), n))
    assert mse == (3, 16 * m * 640 + 8 * m)
    values = _abstract((64,), n)
    assert cost(lambda x, k: snn.gelu(x, k), values) == (26, 776.375 * m * 64)
    assert cost(lambda x, k: snn.gelu(x, k, approximate=True), values) == (27, 444 * m * 64)
    assert cost(lambda x, k: snn.softplus(x, k), values) == (31, 546.125 * m * 64)


def test_costs_of_the_losses():
    key = jax.random.key(0)
    bce = sjax.cost(lambda z, k: snn.binary_cross_entropy_with_logits(z, jnp.ones((64, 1), int), key=k))(
        _abstract((64, 1), 2), key
    )
    assert (bce.rounds, bce.bytes_per_party) == (32, 546.125 * 64 + 8)
    ce = sjax.cost(lambda z, k: snn.softmax_cross_entropy(z, jnp.ones((64, 10), int), key=k))(
        _abstract((64, 10), 2), key
    )
    assert (ce.rounds, ce.bytes_per_party) == (59, 150736)
