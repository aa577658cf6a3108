"""The epochs of a Keras classifier: batch size, class weights, and the loop over length-bucketed
batches (or Keras' own padded batches), validated after every epoch."""

from __future__ import annotations

import numpy as np

from newstopic.backend import device_count
from newstopic.errors import NewstopicError
from newstopic.lazy import callbacks

PREDICT_BATCH = 256
BATCH_SIZES = (128, 64, 32)  # the automatic choices, largest first
MIN_BATCHES_PER_EPOCH = 30
# A training set so small that batches of the smallest size make fewer than FEW_BATCHES an
# epoch (under 512 texts) gets batches of TINY_BATCH instead.
FEW_BATCHES, TINY_BATCH = 16, 8
EMA_MOMENTUM = 0.95  # each step keeps this much of the average: about 20 steps' worth


def auto_batch_size(n_texts: int) -> int:
    """The largest of BATCH_SIZES that still cuts `n_texts` into MIN_BATCHES_PER_EPOCH batches
    (else the smallest), or TINY_BATCH for a few hundred texts: large batches take less time per
    epoch at the same accuracy, since a recurrent layer steps through the words one at a time
    whatever the batch, but a small training set then gets too few updates an epoch to learn in
    the epochs that early stopping allows (docs/models.md)."""
    if n_texts / BATCH_SIZES[-1] < FEW_BATCHES:
        return TINY_BATCH
    return next((size for size in BATCH_SIZES if n_texts / size >= MIN_BATCHES_PER_EPOCH),
                BATCH_SIZES[-1])


def auto_ema_momentum(n_texts: int) -> float | None:
    """The momentum of the weights' moving average that is validated and kept (None: the
    weights as trained): EMA_MOMENTUM, but none for a training set so small that it gets
    batches of TINY_BATCH, where the average lost (docs/models.md)."""
    return None if auto_batch_size(n_texts) == TINY_BATCH else EMA_MOMENTUM


def check_devices(name: str, bucket: bool, batch_size: int | None = None) -> None:
    """Refuse, before training, what a data-parallel run cannot share out over its devices."""
    devices = device_count()
    if devices > 1 and not bucket:
        raise NewstopicError(f"model '{name}' trains on Keras' own batches, which --devices "
                             "cannot share out: leave it out of --models, or drop --devices")
    if batch_size is not None and batch_size % devices:
        raise NewstopicError(f"batch size {batch_size} does not share out evenly over {devices} "
                             f"devices: give --batch-size a multiple of {devices}")


def class_weight(y: np.ndarray, n_classes: int, mode: str | None) -> dict | None:
    """With `mode` "balanced", each class weighed by its inverse frequency in `y`."""
    if mode != "balanced":
        return None
    counts = np.bincount(y, minlength=n_classes)
    return {i: len(y) / (len(counts) * c) for i, c in enumerate(counts) if c}


def stopped(state: dict, patience: int | None) -> bool:
    """Whether early stopping ended the run whose state this is."""
    return patience is not None and state["wait"] >= patience


def run_epochs(model, x, y, val_x, val_y, *, epochs: int, initial_epoch: int, batch_size: int,
               seed: int, weights: dict | None, bucket: bool, run: list) -> None:
    """Train `model` from `initial_epoch` to `epochs` with the callbacks `run`."""
    if not bucket:
        model.fit(x, y, validation_data=(val_x, val_y), epochs=epochs,
                  initial_epoch=initial_epoch, batch_size=batch_size, shuffle=True,
                  class_weight=weights, callbacks=[callbacks.AveragedValidation(), *run],
                  verbose=0)
        return
    sample_weight = None if weights is None else np.array([weights[c] for c in y],
                                                           dtype=np.float32)
    train = callbacks.LengthBuckets(x, y, batch_size, seed, epoch=initial_epoch,
                                    sample_weight=sample_weight, devices=device_count())
    # Validated by a callback, not by Keras: Keras remakes its validation iterator every
    # epoch, and dropping one over an endless stream stalled each epoch by seconds.
    model.fit(train.dataset(), steps_per_epoch=len(train), epochs=epochs,
              initial_epoch=initial_epoch, shuffle=False,
              callbacks=[callbacks.BucketedValidation(val_x, val_y, PREDICT_BATCH), *run],
              verbose=0)
