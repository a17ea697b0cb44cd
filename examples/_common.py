"""What the examples share: data sets, the training loop in plaintext and under MPC, timing and the report.

Every example trains (or evaluates) the same plain JAX code twice: once in plaintext, jit-compiled, and once
through ``jax.jit(sjax.secure(...))`` on secret shares, with the same initial parameters, the same batches
in the same order and the same optimizer, so that the two accuracies can be compared directly.

The training loop under MPC:

* Inputs, labels and parameters are secret-shared once, up front (``sjax.share``, ``sjax.nn.share_params``).
* One epoch is one XLA program: ``lax.scan`` of the training step over the batches, compiled once
  (ahead of time, so the compile time is measured apart from the run time) and called once per epoch.
* The batches of an epoch are a public permutation of the training set (which rows go together is public;
  their values stay secret). Gathering rows of a share at public indices is local: no communication.
* Each epoch gets its own key, split from a root key; ``sjax.secure`` splits it again for every protocol,
  so no key is ever used twice (run an example with ``--check-keys`` to have JAX verify it).
* Leakage beyond the shapes: the loss of every step is revealed (the progress bar shows it) and the
  trained parameters are revealed at the end to measure test accuracy. Both are choices of the example,
  not of sjax: drop the reveals and nothing but the shapes and the batch order leaks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from sklearn import datasets
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

import sjax

# -- command line -------------------------------------------------------------------------------------


def parser(doc: str, *, epochs: int, batch: int = 64) -> argparse.ArgumentParser:
    """The options every example takes; each example adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--epochs", type=int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument("--batch", type=int, default=batch, help=f"batch size (default {batch})")
    p.add_argument("--parties", type=int, default=2, help="number of parties (default 2)")
    p.add_argument("--limit", type=int, default=None, help="use at most N training and N test examples")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the batch order and every key")
    p.add_argument(
        "--xla-opt0",
        action="store_true",
        help="compile the encrypted program with xla_backend_optimization_level=0: about half the compile "
        "time, two to five times the run time (worth it for one short run)",
    )
    p.add_argument("--check-keys", action="store_true", help="run under jax.debug_key_reuse(True)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def jit_options(args: argparse.Namespace) -> dict:
    """``compiler_options`` for ``jax.jit`` of the encrypted program: :func:`sjax.compiler_options` for
    this backend, and with ``--xla-opt0`` XLA's backend optimisation level 0."""
    options = sjax.compiler_options()
    return options | {"xla_backend_optimization_level": 0} if args.xla_opt0 else options


# -- data ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Data:
    """A train/test split: features as float32, labels as integer class ids."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load(
    name: str, *, seed: int = 0, limit: int | None = None, test_size: float = 0.2, center: bool = False
) -> Data:
    """Loads a data set that scikit-learn ships (nothing is downloaded) and splits it.

    Args:
        name: ``"breast_cancer"`` (569 x 30, two classes; features standardised with the statistics of the
            training set) or ``"digits"`` (1797 images of 8 x 8 pixels, ten classes; pixels scaled from
            0..16 to [0, 1]).
        seed: seed of the stratified split.
        limit: keep at most this many training and this many test examples (for quick runs).
        test_size: fraction held out for testing.
        center: subtract the training set's mean from the features (after scaling, for digits).

    Preprocessing is done in plaintext, before anything is shared: in a real deployment the data owner
    would standardise its own data (with statistics it may publish or share).
    """
    if name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    else:
        raise ValueError(f"unknown data set {name!r}")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    # Statistics of the training set only, so that nothing about the test set leaks into training.
    mean = x_train.mean(axis=0)
    if name == "breast_cancer":
        std = x_train.std(axis=0)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    elif center:
        x_train, x_test = x_train - mean, x_test - mean
    if limit is not None:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    f32, i32 = np.float32, np.int32
    return Data(x_train.astype(f32), y_train.astype(i32), x_test.astype(f32), y_test.astype(i32))


def batch_orders(n_examples: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """One public shuffle of the training set per epoch, cut to whole batches (the remainder is dropped).

    The orders come from NumPy rather than a JAX key so that the plaintext and the encrypted runs can use
    the very same arrays without using a key twice.
    """
    n_batches = n_examples // batch_size
    if n_batches == 0:
        raise ValueError(f"{n_examples} training examples are fewer than one batch of {batch_size}")
    rng = np.random.default_rng(seed)
    return [rng.permutation(n_examples)[: n_batches * batch_size].astype(np.int32) for _ in range(epochs)]


# -- plain JAX training -------------------------------------------------------------------------------

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


def make_step(loss_fn: LossFn, optimizer: optax.GradientTransformation):
    """A plain JAX training step, ``step((params, opt_state), (x, y)) -> ((params, opt_state), loss)``.

    Nothing in it knows about sjax: the same function trains in plaintext and, through ``sjax.secure``, on
    secret shares.
    """

    def step(state, batch):
        params, opt_state = state
        x, y = batch
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step


def make_epoch(step, batch_size: int):
    """``epoch(state, x, y, order) -> (state, losses)``: ``lax.scan`` of ``step`` over the batches.

    ``order`` is the epoch's public permutation of the rows (a whole number of batches); scanning inside
    one function makes the whole epoch a single XLA program, with no Python between steps.
    """

    def epoch(state, x, y, order):
        xs = x[order].reshape(-1, batch_size, *x.shape[1:])
        ys = y[order].reshape(-1, batch_size, *y.shape[1:])
        return lax.scan(step, state, (xs, ys))

    return epoch


# -- timing -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CompileTime:
    """Seconds to trace and lower a jitted function (for sjax.secure: the interpreter runs), then compile."""

    trace_s: float
    compile_s: float
    program_mb: float | None = None  # XLA's account of the program: arguments + outputs + temporaries

    @property
    def total_s(self) -> float:
        return self.trace_s + self.compile_s


def compile_ahead(jitted, *args, **kwargs):
    """Compiles ``jitted`` for these arguments now, so that no later call pays for it, and times it."""
    start = time.perf_counter()
    lowered = jitted.trace(*args, **kwargs).lower()
    traced = time.perf_counter()
    compiled = lowered.compile()
    seconds = time.perf_counter() - traced
    try:
        analysis = compiled.memory_analysis()
        parts = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
        program_mb = sum(getattr(analysis, p) for p in parts) / 2**20
    except Exception:  # noqa: BLE001 (not every backend reports it)
        program_mb = None
    return compiled, CompileTime(traced - start, seconds, program_mb)


@contextlib.contextmanager
def announce(message: str) -> Iterator[None]:
    """Prints ``message``, runs the block, then prints how long it took."""
    print(f"{message} ...", end=" ", flush=True)
    start = time.perf_counter()
    yield
    print(f"{time.perf_counter() - start:.1f} s", flush=True)


# -- the training runs --------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """The outcome of one training run (plaintext or encrypted)."""

    params: Any  # plaintext parameters (revealed, for the encrypted run)
    losses: list[np.ndarray]  # per epoch, the loss of every step
    epoch_s: list[float]
    compile: CompileTime
    accuracy: float = float("nan")

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.epoch_s))


def _loop(run_epoch, state, orders, desc: str, progress: bool):
    """Calls ``run_epoch(state, index, order) -> (state, losses)`` once per epoch, timing each call."""
    losses, seconds = [], []
    bar = tqdm(orders, desc=desc, unit="epoch", disable=not progress, dynamic_ncols=True)
    for i, order in enumerate(bar):
        start = time.perf_counter()
        state, epoch_losses = run_epoch(state, i, order)
        epoch_losses = np.asarray(jax.block_until_ready(epoch_losses))
        seconds.append(time.perf_counter() - start)
        losses.append(epoch_losses)
        bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}", mean=f"{epoch_losses.mean():.4f}")
    return state, losses, seconds


def train_plaintext(step, state, x, y, orders, *, batch_size: int, progress: bool = True) -> Run:
    """Trains in plaintext JAX: the reference the encrypted run is compared with."""
    epoch = jax.jit(make_epoch(step, batch_size))
    x, y = jnp.asarray(x), jnp.asarray(y)
    compiled, compile_time = compile_ahead(epoch, state, x, y, orders[0])
    state, losses, seconds = _loop(
        lambda s, i, order: compiled(s, x, y, order), state, orders, "plaintext", progress
    )
    return Run(state[0], losses, seconds, compile_time)


@dataclasses.dataclass
class Shared:
    """The secret inputs of an encrypted training run, shared once, up front."""

    state: Any  # (params, opt_state) with ArithShare leaves
    x: sjax.ArithShare
    y: sjax.ArithShare


def share_inputs(state, x, y, key: jax.Array, n_parties: int) -> Shared:
    """Secret-shares the initial training state, the features and the labels, each with its own key.

    Integer leaves of the optimizer state (adam's step count) stay public: the number of steps is public.
    """
    k_state, k_x, k_y = jax.random.split(key, 3)
    return Shared(
        sjax.nn.share_params(state, k_state, n_parties, integer_leaves="public"),
        sjax.share(jnp.asarray(x), k_x, n_parties),
        sjax.share(jnp.asarray(y), k_y, n_parties),
    )


def train_secure(
    step,
    shared: Shared,
    orders,
    key: jax.Array,
    *,
    batch_size: int,
    progress: bool = True,
    verbose: bool = True,
    compiler_options: dict | None = None,
) -> Run:
    """Trains on secret shares: ``jax.jit(sjax.secure(epoch))``, one XLA program per epoch.

    Args:
        step: the plain JAX step of :func:`make_step`.
        shared: the shared initial state and data (:func:`share_inputs`).
        orders: the public batch order of every epoch (:func:`batch_orders`).
        key: root key of the run; split into one key per epoch, each used once.
        batch_size: rows per step.
        progress: show a progress bar.
        verbose: print what is being compiled.
        compiler_options: XLA options for ``jax.jit`` (:func:`jit_options`).

    Returns:
        The run, with the revealed final parameters and the revealed losses.
    """
    secure_epoch = sjax.secure(make_epoch(step, batch_size))

    def epoch_and_reveal(state, x, y, order, key):
        state, losses = secure_epoch(state, x, y, order, key=key)
        return state, sjax.reveal(losses)  # leak: the loss of every step

    # The reveal is part of the compiled program, so that nothing but the call itself runs per epoch.
    epoch = jax.jit(epoch_and_reveal, compiler_options=compiler_options)
    k_compile, k_epochs = jax.random.split(key)
    # Sliced now, so that no indexing op compiles during the first (timed) epoch.
    epoch_keys = list(jax.random.split(k_epochs, len(orders)))
    # Compiling needs a key of the right type only; a separate one keeps every key single-use.
    with announce("compiling the encrypted epoch") if verbose else contextlib.nullcontext():
        compiled, compile_time = compile_ahead(epoch, shared.state, shared.x, shared.y, orders[0], k_compile)
    if verbose:
        print(f"  (trace and lower {compile_time.trace_s:.1f} s, XLA compile {compile_time.compile_s:.1f} s)")

    def run_epoch(state, i, order):
        return compiled(state, shared.x, shared.y, order, epoch_keys[i])

    state, losses, seconds = _loop(run_epoch, shared.state, orders, "encrypted", progress)
    params = sjax.nn.reveal_params(state[0], dtype=jnp.float32)  # leak: the trained model
    return Run(params, losses, seconds, compile_time)


def step_cost(step, shared: Shared, batch_size: int, key: jax.Array) -> sjax.Cost:
    """Communication of one encrypted training step on the first batch, read off its trace (nothing runs)."""
    batch = (shared.x[:batch_size], shared.y[:batch_size])  # slicing a share is local
    return sjax.cost(sjax.secure(step))(shared.state, batch, key=key)


def compare_training(
    step, state, x_train, y_train, data: Data, predict, args: argparse.Namespace, key: jax.Array
) -> dict:
    """Trains ``step`` in plaintext and encrypted on the same batches, from the same ``state``.

    Args:
        step: the plain JAX step of :func:`make_step`.
        state: the initial ``(params, opt_state)``, plaintext.
        x_train: training features.
        y_train: training targets in the form the loss takes (one-hot, or 0/1).
        data: the split, for the test set.
        predict: ``predict(params, x) -> class ids``, plain JAX.
        args: the options of :func:`parser`.
        key: used once, split for sharing, training and the cost trace.

    Returns:
        ``{"plaintext": Run, "encrypted": Run, "cost": Cost of one step, "steps_per_epoch": int}``, the
        runs' ``accuracy`` set on the test set (the encrypted run's from its revealed parameters).
    """
    orders = batch_orders(len(x_train), args.batch, args.epochs, args.seed)
    progress = not args.no_progress
    plain = train_plaintext(step, state, x_train, y_train, orders, batch_size=args.batch, progress=progress)
    plain.accuracy = accuracy(predict, plain.params, data.x_test, data.y_test)

    k_share, k_train, k_cost = jax.random.split(key, 3)
    shared = share_inputs(state, x_train, y_train, k_share, args.parties)
    options = jit_options(args)
    secure = train_secure(
        step, shared, orders, k_train, batch_size=args.batch, progress=progress, compiler_options=options
    )
    secure.accuracy = accuracy(predict, secure.params, data.x_test, data.y_test)
    cost = step_cost(step, shared, args.batch, k_cost)
    steps = len(orders[0]) // args.batch
    return {"plaintext": plain, "encrypted": secure, "cost": cost, "steps_per_epoch": steps}


def print_comparison(title: str, figures: dict) -> None:
    """The comparison the training examples end with."""
    print(f"\n{title}")
    plain, secure = figures["plaintext"], figures["encrypted"]
    print_table(summary_rows(plain, secure, figures["cost"], figures["steps_per_epoch"]))
    print(f"one encrypted step: {figures['cost']}")


def main(parse_args, run, argv=None) -> None:
    """Parses the command line and runs the example, under the key-reuse checker if asked."""
    args = parse_args(argv)
    with check_keys(args.check_keys):
        run(args)


# -- evaluation and report ----------------------------------------------------------------------------


def accuracy(predict: Callable[[Any, jax.Array], jax.Array], params, x, y) -> float:
    """Fraction of ``x`` whose predicted class (``predict(params, x)``, plaintext) equals ``y``."""
    return float(np.mean(np.asarray(predict(params, jnp.asarray(x))) == y))


def check_keys(enabled: bool):
    """``jax.debug_key_reuse(True)`` when ``enabled``: JAX then fails on any key used twice."""
    return jax.debug_key_reuse(True) if enabled else contextlib.nullcontext()


def summary_rows(plain: Run, secure: Run, cost: sjax.Cost, steps_per_epoch: int) -> list[tuple[str, ...]]:
    """The comparison the examples end with, as (what, plaintext, encrypted) rows."""
    last_loss = (f"{plain.losses[-1].mean():.4f}", f"{secure.losses[-1].mean():.4f}")
    return [
        ("test accuracy", f"{plain.accuracy:.2%}", f"{secure.accuracy:.2%}"),
        ("final loss (mean of last epoch)", *last_loss),
        ("seconds per epoch", f"{plain.seconds_per_epoch:.4f}", f"{secure.seconds_per_epoch:.4f}"),
        ("compile s (trace+lower, XLA)", compile_str(plain.compile), compile_str(secure.compile)),
        ("steps per epoch", str(steps_per_epoch), str(steps_per_epoch)),
        ("rounds per step", "-", str(cost.rounds)),
        ("bytes sent per party per step", "-", f"{cost.bytes_per_party:,}"),
        ("dealer bytes per step", "-", f"{cost.dealer_bytes:,}"),
    ]


def compile_str(c: CompileTime) -> str:
    return f"{c.total_s:.1f} ({c.trace_s:.1f}, {c.compile_s:.1f})"


def print_table(rows, header=("", "plaintext", "encrypted")) -> None:
    """Prints rows of strings as an aligned table."""
    rows = [tuple(header), *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
