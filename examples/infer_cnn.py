"""Encrypted inference of a small flax CNN on the digits data set: secret weights, secret images.

A flax.linen CNN (conv 3x3, ReLU, 2x2 max pooling, conv 3x3, ReLU, 2x2 average pooling, dense) is trained
in plaintext. Then its weights are secret-shared by the model owner and the test images by the data owner;
``sjax.secure`` runs the plain flax classifier, ``argmax`` included, on the shares, and only the predicted
classes are revealed. The encrypted predictions are compared with the plaintext ones.

The encrypted classifier is one compiled XLA program for one batch, called once per batch of the test set
(so the progress bar moves per batch); the test set is shared once, up front, and padded with blank images
to a whole number of batches (their predictions are dropped).

What is not secret: the shapes, the batch split, and the predicted class of every test image.

Compile time: the classifier (2 convolutions, ReLU, max and average pooling, dense, argmax over 10 classes)
compiled in about 11 s on a 2-core CPU and classified the 360 test images in 0.6-0.8 s. With ``--xla-opt0``
(``xla_backend_optimization_level=0``) it compiled in 6 s but ran in 1.8 s: about even for one pass over
this test set, a loss for anything larger, so it is off by default.

Run: ``.venv/bin/python examples/infer_cnn.py [--epochs 15] [--batch 64] [--parties 2]``.
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import _common as common
import sjax


class CNN(nn.Module):
    """Two small convolutions with ReLU and pooling, then a dense layer to the class logits."""

    n_classes: int = 10

    @nn.compact
    def __call__(self, x):  # x: (batch, 8, 8, 1)
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))  # (batch, 4, 4, 8)
        x = nn.relu(nn.Conv(16, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # (batch, 2, 2, 16)
        return nn.Dense(self.n_classes)(x.reshape(x.shape[0], -1))


MODEL = CNN()


def loss_fn(params, x: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy(MODEL.apply({"params": params}, x), labels).mean()


def predict(params, x: jax.Array) -> jax.Array:
    """Class ids of a batch of images: the function that runs on shares, unchanged."""
    return jnp.argmax(MODEL.apply({"params": params}, x), axis=-1)


def images(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, 8, 8, 1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = common.parser(__doc__, epochs=15)
    parser.add_argument("--lr", type=float, default=0.01, help="adam learning rate (plaintext training)")
    return parser.parse_args(argv)


def train(data: common.Data, args: argparse.Namespace, key: jax.Array) -> common.Run:
    """Plaintext training with adam (no fixed point here, so adam's defaults are fine)."""
    x = images(data.x_train)
    params = MODEL.init(key, jnp.zeros((1, *x.shape[1:]), jnp.float32))["params"]
    optimizer = optax.adam(args.lr)
    step = common.make_step(loss_fn, optimizer)
    labels = jax.nn.one_hot(data.y_train, data.n_classes, dtype=jnp.float32)
    orders = common.batch_orders(len(x), args.batch, args.epochs, args.seed)
    state = (params, optimizer.init(params))
    progress = not args.no_progress
    return common.train_plaintext(step, state, x, labels, orders, batch_size=args.batch, progress=progress)


def pad_to_batches(x: np.ndarray, batch: int) -> np.ndarray:
    """Appends blank images up to a whole number of batches (the shapes, and so the padding, are public)."""
    missing = -len(x) % batch
    return np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])


def classify_and_reveal(params, x, key):
    """The encrypted classifier: plain ``predict`` on shares; only the predicted classes are revealed."""
    return sjax.reveal(sjax.secure(predict)(params, x, key=key))  # leak: the predictions, by design


def infer_secure(params, x: np.ndarray, args: argparse.Namespace, key: jax.Array, plain_pred: np.ndarray):
    """Classifies ``x`` on shares, batch by batch, with one compiled program.

    ``plain_pred`` only feeds the progress bar (agreement so far); it takes no part in the computation.

    Returns:
        ``{"predictions", "compile": CompileTime, "seconds": for the whole of x, "cost": per batch}``.
    """
    k_params, k_x, k_compile, k_cost, k_batches = jax.random.split(key, 5)
    shared_params = sjax.nn.share_params(params, k_params, args.parties)  # the model owner's secret
    padded = pad_to_batches(x, args.batch)
    shared_x = sjax.share(jnp.asarray(padded), k_x, args.parties)  # the data owner's secret
    n_batches = len(padded) // args.batch
    # Sliced up front (slicing a share is local), so that the timed loop runs the compiled program only.
    batches = [shared_x[i * args.batch : (i + 1) * args.batch] for i in range(n_batches)]
    batch_keys = list(jax.random.split(k_batches, n_batches))

    classify = jax.jit(classify_and_reveal, compiler_options=common.jit_options(args))
    with common.announce("compiling the encrypted classifier"):
        compiled, compile_time = common.compile_ahead(classify, shared_params, batches[0], k_compile)
    print(f"  (trace and lower {compile_time.trace_s:.1f} s, XLA compile {compile_time.compile_s:.1f} s)")

    predictions = []
    bar = tqdm(range(n_batches), desc="encrypted inference", unit="batch", disable=args.no_progress)
    start = time.perf_counter()
    for i in bar:
        classes = np.asarray(compiled(shared_params, batches[i], batch_keys[i]))
        predictions.append(np.rint(classes).astype(np.int32))  # revealed as fixed point: exact integers
        done = np.concatenate(predictions)[: len(x)]
        bar.set_postfix(agree=f"{int(np.sum(done == plain_pred[: len(done)]))}/{len(done)}")
    seconds = time.perf_counter() - start
    cost = sjax.cost(sjax.secure(predict))(shared_params, batches[0], key=k_cost)
    predictions = np.concatenate(predictions)[: len(x)]
    return {"predictions": predictions, "compile": compile_time, "seconds": seconds, "cost": cost}


def infer_plaintext(params, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Plaintext predictions and their seconds (compiled first, like the encrypted ones)."""
    compiled, _ = common.compile_ahead(jax.jit(predict), params, jnp.asarray(x))
    start = time.perf_counter()
    predictions = np.asarray(jax.block_until_ready(compiled(params, jnp.asarray(x))))
    return predictions, time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    """Trains in plaintext, classifies the test set encrypted, prints the comparison, returns the figures."""
    data = common.load("digits", seed=args.seed, limit=args.limit)
    print(f"digits: {len(data.x_train)} training, {len(data.x_test)} test images of 8x8 pixels in [0, 1]")
    k_init, k_secure = jax.random.split(jax.random.key(args.seed))
    trained = train(data, args, k_init)
    x_test = images(data.x_test)
    plain_pred, plain_s = infer_plaintext(trained.params, x_test)
    secure = infer_secure(trained.params, x_test, args, k_secure, plain_pred)

    n = len(x_test)
    predictions = secure["predictions"]
    same = int(np.sum(predictions == plain_pred))
    cost = secure["cost"]
    rows = [
        ("test accuracy", *(f"{np.mean(p == data.y_test):.2%}" for p in (plain_pred, predictions))),
        ("predictions equal to plaintext", "", f"{same / n:.2%} ({same}/{n})"),
        ("seconds for the test set", f"{plain_s:.4f}", f"{secure['seconds']:.3f}"),
        ("compile s (trace+lower, XLA)", "", common.compile_str(secure["compile"])),
        ("rounds per batch", "-", str(cost.rounds)),
        ("bytes sent per party per batch", "-", f"{cost.bytes_per_party:,}"),
        ("dealer bytes per batch", "-", f"{cost.dealer_bytes:,}"),
    ]
    print(
        f"\nCNN, {args.parties} parties, {n} test images in batches of {args.batch}; plaintext training: "
        f"{args.epochs} epochs, final loss {trained.losses[-1].mean():.4f}"
    )
    common.print_table(rows)
    print(f"one encrypted batch: {cost}")
    return {"agreement": same / n, **secure}


if __name__ == "__main__":
    common.main(parse_args, run)
