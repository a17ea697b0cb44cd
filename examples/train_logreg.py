"""Encrypted logistic regression on the breast-cancer data set, written as plain JAX and optax.

Two parties hold additive secret shares of the features, the labels and the weights; neither ever sees
them. The model, the loss (``optax.sigmoid_binary_cross_entropy``), the gradient (``jax.grad``) and the
update (``optax.sgd``) are ordinary JAX code: ``jax.jit(sjax.secure(epoch))`` runs a whole epoch of it on
the shares as one XLA program. The same code is trained in plaintext from the same initial weights on the
same batches, and the two test accuracies are compared.

What is not secret: the features are standardised with the training set's mean and deviation in plaintext,
before sharing (the data owner's preprocessing); the batch order; the loss of every step (revealed for the
progress bar); the trained weights (revealed at the end to measure test accuracy).

Run: ``.venv/bin/python examples/train_logreg.py [--epochs 10] [--lr 0.5] [--batch 64] [--parties 2]``.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import _common as common


def init_params(n_features: int) -> dict:
    """Zero weights and bias: the usual start for logistic regression (the loss is convex)."""
    return {"w": jnp.zeros((n_features,), jnp.float32), "b": jnp.zeros((), jnp.float32)}


def logits(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["w"] + params["b"]


def loss_fn(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean binary cross-entropy of the labels ``y`` (0 or 1) against ``sigmoid(logits)``."""
    return optax.sigmoid_binary_cross_entropy(logits(params, x), y).mean()


def predict(params: dict, x: jax.Array) -> jax.Array:
    return (jax.nn.sigmoid(logits(params, x)) > 0.5).astype(jnp.int32)


def parse_args(argv=None) -> argparse.Namespace:
    parser = common.parser(__doc__, epochs=10)
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate (default 0.5)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Trains in plaintext and encrypted, prints the comparison, and returns the figures."""
    data = common.load("breast_cancer", seed=args.seed, limit=args.limit)
    print(
        f"breast cancer: {len(data.x_train)} training, {len(data.x_test)} test examples, "
        f"{data.x_train.shape[1]} features (standardised in plaintext with training statistics)"
    )
    optimizer = optax.sgd(args.lr)
    params = init_params(data.x_train.shape[1])
    step = common.make_step(loss_fn, optimizer)
    y_train = data.y_train.astype(jnp.float32)
    state = (params, optimizer.init(params))
    key = jax.random.key(args.seed)
    figures = common.compare_training(step, state, data.x_train, y_train, data, predict, args, key)
    common.print_comparison(
        f"logistic regression, {args.parties} parties, batch {args.batch}, SGD lr {args.lr}, "
        f"{args.epochs} epochs",
        figures,
    )
    return figures


if __name__ == "__main__":
    common.main(parse_args, run)
