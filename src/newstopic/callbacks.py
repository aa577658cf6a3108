"""Keras pieces of the training loop: early stopping that survives a restart, rich progress, and
length-bucketed batches."""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager

from newstopic.backend import device_count, require

require()  # before Keras is imported: it reads its backend once

import keras  # noqa: E402
import numpy as np


class EarlyStoppingCheckpoint(keras.callbacks.Callback):
    """Early stopping that keeps the weights of the epoch with the least validation loss, and a
    checkpoint after every epoch (`save(epoch)`), with all of its state in `self.state` so that
    a resumed run carries on exactly where it stopped.

    Training stops after `patience` epochs in which neither the validation loss nor the
    validation accuracy reached a new best: a model whose accuracy still climbs while its loss
    wavers is still learning (the Transformer on 20 Newsgroups: best loss at epoch 4, then
    worse twice while the accuracy rose, then its best loss at epoch 7). With
    `watch_accuracy=False` only the loss counts."""

    def __init__(self, patience: int | None, state: dict, save=None, watch_accuracy=True):
        super().__init__()
        self.patience, self.state, self.save = patience, state, save
        self.watch_accuracy = watch_accuracy
        self._started = 0.0

    @staticmethod
    def initial_state() -> dict:
        """The state of a run before its first epoch."""
        return {"epochs_done": 0, "history": {}, "best_loss": None, "best_accuracy": None,
                "best_epoch": 0, "wait": 0, "best_weights": None}

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        history = self.state["history"]
        for name, value in (logs or {}).items():
            history.setdefault(name, []).append(float(value))
        history.setdefault("seconds", []).append(time.perf_counter() - self._started)
        loss, accuracy = float(logs["val_loss"]), logs.get("val_accuracy")
        lower_loss = self.state["best_loss"] is None or loss < self.state["best_loss"]
        higher_accuracy = self.watch_accuracy and accuracy is not None and (
            self.state["best_accuracy"] is None or accuracy > self.state["best_accuracy"])
        if lower_loss:
            self.state.update(best_loss=loss, best_epoch=epoch + 1)
            with averaged_weights(self.model):
                self.state["best_weights"] = self.model.get_weights()
        if higher_accuracy:
            self.state["best_accuracy"] = float(accuracy)
        self.state["wait"] = 0 if lower_loss or higher_accuracy else self.state["wait"] + 1
        self.state["epochs_done"] = epoch + 1
        if self.save is not None:
            self.save(self.model, self.state)
        if self.patience is not None and self.state["wait"] >= self.patience:
            self.model.stop_training = True


def adam(learning_rate: float, ema_momentum: float | None):
    """Adam, keeping a moving average of the weights (`ema_momentum` of it kept at each step)
    unless `ema_momentum` is None: validated and kept as the best, the averaged weights lift
    the recurrent models on small training sets, where one epoch's weights vary most from
    seed to seed (docs/models.md)."""
    if ema_momentum is None:
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.Adam(learning_rate, use_ema=True, ema_momentum=ema_momentum)


@contextmanager
def averaged_weights(model):
    """Within the block, `model` holds the moving averages of its trainable weights that its
    optimizer keeps (`use_ema`), as they are validated and kept as the best; after it, the
    weights that training goes on from. Without moving averages, the weights as they are."""
    optimizer = getattr(model, "optimizer", None)
    if not getattr(optimizer, "use_ema", False) or not optimizer.built:
        yield
        return
    trained = [variable.numpy() for variable in model.trainable_variables]
    optimizer.finalize_variable_values(model.trainable_variables)
    for variable in model.trainable_variables:
        # a copy: on JAX the variable now shares the average's buffer, which a prediction
        # may take over and free
        variable.assign(variable.numpy())
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, trained):
            variable.assign(value)


class AveragedValidation(keras.callbacks.Callback):
    """Keras' own validation, as `BucketedValidation`, scores the weights' moving averages
    where the optimizer keeps them (`averaged_weights`; Keras' SwapEMAWeights swaps in place
    by adding and subtracting, which rounds the weights that training goes on from)."""

    def __init__(self):
        super().__init__()
        self._averaged = ExitStack()

    def on_test_begin(self, logs=None):
        self._averaged.enter_context(averaged_weights(self.model))

    def on_test_end(self, logs=None):
        self._averaged.close()


class EpochEnd(keras.callbacks.Callback):
    """Calls `function(epoch, logs)` after every epoch, with the validation loss in the logs."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def on_epoch_end(self, epoch, logs=None):
        self.function(epoch, dict(logs or {}))


class EpochSeeds(keras.callbacks.Callback):
    """Every random stream of training (each layer's seed generator, and the global ones)
    restarts at the beginning of each epoch from the run's seed and the epoch number alone, so
    that a run resumed from a checkpoint draws, epoch for epoch, what the uninterrupted run
    drew. (A saved model does not keep its seed generators' states.)"""

    STEP = 1 << 20  # one epoch's share of a generator's counter

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        keras.utils.set_random_seed((self.seed * 1009 + epoch) % 2**31)
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for number, state in enumerate(states):
            state.assign(np.array([self.seed * 7919 + number, epoch * self.STEP],
                                  dtype=state.dtype))


class RichProgress(keras.callbacks.Callback):
    """One rich progress bar per epoch: batches, loss and accuracy, then validation, and ETA."""

    def __init__(self, progress, epochs: int, steps: int, name: str):
        super().__init__()
        self.progress, self.epochs, self.steps, self.name = progress, epochs, steps, name
        self.task, self.epoch = None, 0

    def _describe(self, epoch, logs, validation=False):
        text = (f"{self.name} epoch {epoch + 1}/{self.epochs} loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f}")
        if validation:
            text += f" val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}"
        return text

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.task = self.progress.add_task(f"{self.name} epoch {epoch + 1}/{self.epochs}",
                                           total=self.steps)

    def on_train_batch_end(self, batch, logs=None):
        self.progress.update(self.task, completed=batch + 1,
                             description=self._describe(self.epoch, logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        self.progress.update(self.task, completed=self.steps,
                             description=self._describe(epoch, logs or {}, validation=True))


class BucketedValidation(keras.callbacks.Callback):
    """Validation loss and accuracy at the end of each epoch (of the weights' moving averages
    where the optimizer keeps them), put into its logs for the callbacks after this one,
    computed on batches of documents of similar length, cut to their longest, as prediction
    is: Keras' own validation runs every text at full length, about twice as slow
    (docs/models.md, design notes)."""

    def __init__(self, x, y, batch_size: int):
        super().__init__()
        self.buckets = LengthBuckets(x, None, batch_size, 0, shuffle=False,
                                     devices=device_count())
        self.y = y

    def on_epoch_end(self, epoch, logs=None):
        with averaged_weights(self.model):
            proba = self.buckets.predict(self.model)
        right = np.clip(proba[np.arange(len(self.y)), self.y], 1e-7, 1.0)
        logs["val_loss"] = float(-np.mean(np.log(right)))
        logs["val_accuracy"] = float(np.mean(proba.argmax(axis=1) == self.y))


class LengthBuckets:
    """Batches of documents of similar length, each cut to its longest document (rounded up to
    `step`): recurrent layers then run over far fewer padding steps. Training batches are drawn
    afresh each epoch from a generator seeded with (seed, epoch); without `shuffle` the
    documents are simply sorted by length, as for validation and prediction.

    Each training batch's size is a multiple of `devices`, the devices a data-parallel run
    shares it out over: the last batch of an epoch leaves out its remainder (other documents
    each epoch); prediction fills its batches up (`predict_batch`)."""

    def __init__(self, x, y, batch_size: int, seed: int, epoch: int = 0, sample_weight=None,
                 step: int = 32, shuffle: bool = True, devices: int = 1):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size, self.seed, self.epoch, self.step = batch_size, seed, epoch, step
        self.shuffle, self.devices = shuffle, devices
        self.lengths = np.count_nonzero(x, axis=1)
        self.batches = self.plan(epoch)

    def plan(self, epoch: int) -> list[np.ndarray]:
        if not self.shuffle:
            # full batches but the last: few batch shapes for a compiling backend
            order = np.argsort(self.lengths, kind="stable")
            return np.split(order, range(self.batch_size, len(order), self.batch_size))
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        # sort within chunks of 50 batches: similar lengths together, still well mixed
        chunk = 50 * self.batch_size
        order = np.concatenate([part[np.argsort(self.lengths[part], kind="stable")]
                                for part in np.split(order, range(chunk, len(order), chunk))])
        order = order[:len(order) - len(order) % self.batch_size % self.devices]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        # Keras on TensorFlow types the whole stream by the shapes of its first two batches: a
        # width both share would be taken for every batch's, and tf.data refuses the others.
        widths = [self.width(rows) for rows in batches]
        other = next((i for i, width in enumerate(widths) if width != widths[0]), None)
        if other is not None and other > 1:
            batches[1], batches[other] = batches[other], batches[1]
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def predict(self, model) -> np.ndarray:
        """`model`'s outputs for all rows, in their order, computed batch by batch."""
        outputs = None
        for rows in self.batches:
            batch = predict_batch(model, self.batch(rows))
            if outputs is None:
                outputs = np.empty((len(self.x), *batch.shape[1:]), dtype=np.float64)
            outputs[rows] = batch
        return outputs

    def width(self, rows: np.ndarray) -> int:
        """The width of a batch of these rows: their longest document, rounded up to `step`."""
        return int(-(-max(self.lengths[rows].max(), 1) // self.step) * self.step)

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """The word ids of these rows, cut to their width."""
        return self.x[rows, :self.width(rows)]

    def dataset(self) -> "TrainingBatches":
        """The training batches of every epoch from `epoch` on, for `fit` with
        steps_per_epoch=len(self)."""
        return TrainingBatches(self)


def predict_batch(model, x: np.ndarray):
    """`model.predict_on_batch(x)`, its rows filled up (with copies of the last) to a multiple
    of the devices that a data-parallel run shares each batch out over."""
    fill = -len(x) % device_count()
    outputs = model.predict_on_batch(np.concatenate([x, np.repeat(x[-1:], fill, axis=0)])
                                     if fill else x)
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(output)[:len(x)] for output in outputs]
    return np.asarray(outputs)[:len(x)]


def predict_in_batches(model, x: np.ndarray, batch_size: int):
    """`model`'s outputs (an array, or a list for several outputs) for the rows of `x`,
    `batch_size` rows at a time."""
    parts = [predict_batch(model, x[start:start + batch_size])
             for start in range(0, len(x), batch_size)]
    if isinstance(parts[0], list):
        return [np.concatenate(outputs) for outputs in zip(*parts)]
    return np.concatenate(parts)


class TrainingBatches(keras.utils.PyDataset):
    """`LengthBuckets`' training batches as one endless stream, epoch after epoch: batch `i`
    depends on `i` alone, so a backend that reads ahead (tf.data prefetches) gets the same
    batches as one that does not. Python cuts each batch with NumPy: no TensorFlow op, so
    every Keras backend trains from it."""

    def __init__(self, buckets: LengthBuckets):
        super().__init__()
        self.buckets, self.steps = buckets, len(buckets)
        self._plans = {buckets.epoch: buckets.batches}

    @property
    def num_batches(self):
        return None  # endless: fit's steps_per_epoch marks the epochs

    def __getitem__(self, index: int):
        epoch, step = divmod(index, self.steps)
        epoch += self.buckets.epoch
        if epoch not in self._plans:
            self._plans = {epoch: self.buckets.plan(epoch)}  # the one epoch being read
        rows = self._plans[epoch][step]
        buckets = self.buckets
        batch = (buckets.batch(rows), buckets.y[rows])
        if buckets.sample_weight is not None:
            batch += (buckets.sample_weight[rows],)
        return batch
