"""The Keras callbacks of a training run: the learning rate in the logs, epoch
timing, a progress line with the ETA, the divergence rule, and every finished
epoch's logs kept beside the checkpoint."""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras

from ablation.core import atomic_files


class LogLearningRate(keras.callbacks.Callback):
    """Adds the learning rate at the start of each epoch to its logs (so dvclive records it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._rate


class EpochTimer(keras.callbacks.Callback):
    """Wall time of the training epochs, split into training and the validation
    pass at each epoch's end (data caching before fit is in neither)."""

    def __init__(self):
        super().__init__()
        self.seconds, self.validation_seconds, self.epochs = 0.0, 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.validation_seconds += time.perf_counter() - self._test_start

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self._start
        self.epochs += 1


QUICK_RUN_HINT = ("over 2 hours on this machine. For a CPU, start from the README's 'A first result' "
                  "(a CIFAR ResNet; data.limit and fewer epochs are quicker still) or run on a GPU")


class ProgressLine(keras.callbacks.Callback):
    """Progress on stdout for long CPU runs: once the first steps are timed, the
    estimated training time (with a hint when it passes two hours); then a line
    with the running loss and the ETA at most every `every` seconds. `verbose=2`
    prints only at epoch ends, minutes apart on a CPU, and Keras' progress bar
    floods DVC's logs with carriage returns."""

    def __init__(self, steps_per_epoch: int, every: float = 30.0):
        super().__init__()
        self.steps_per_epoch, self.every = steps_per_epoch, every
        self._first_step = None  # (time, step) at the end of the first step, which includes tracing
        self._estimated = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._origin = epoch, (time.perf_counter(), 0)  # rates count from here: (time, step)
        self._last = self._origin[0]

    def _remaining_seconds(self, step: int, per_step: float) -> tuple[float, float]:
        epoch_left = per_step * (self.steps_per_epoch - step)
        return epoch_left, epoch_left + (self.params["epochs"] - self._epoch - 1) * per_step * self.steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        now, step = time.perf_counter(), batch + 1
        if self._first_step is None:
            self._first_step = self._origin = (now, step)  # the first step traces the graph: not a rate
        elif not self._estimated and step > self._first_step[1]:
            per_step = (now - self._first_step[0]) / (step - self._first_step[1])
            total = self._remaining_seconds(step, per_step)[1]
            print(f"estimated training time: {total / 60:.0f} min ({per_step * 1000:.0f} ms/step)"
                  + (f": {QUICK_RUN_HINT}" if total > 2 * 3600 else ""), flush=True)
            self._estimated = True
        if now - self._last < self.every:
            return
        self._last = now
        if step <= self._origin[1]:
            return
        per_step = (now - self._origin[0]) / (step - self._origin[1])
        epoch_left, total_left = self._remaining_seconds(step, per_step)
        loss = (logs or {}).get("loss")
        print(f"  epoch {self._epoch + 1}/{self.params['epochs']} step {step}/{self.steps_per_epoch}"
              + (f" loss {float(loss):.4f}" if loss is not None else "")
              + f", {per_step * 1000:.0f} ms/step, epoch ETA {epoch_left:.0f} s,"
              + f" training ETA {total_left / 60:.1f} min",
              flush=True)


# A run has diverged when its running training loss is non-finite or exceeds this
# many times its starting loss (the first batch's, before any update: about ln K
# plus the L2 penalty). The worst healthy run measured here stays well below:
# plain-56 of the CPU study averaged 7.6-8.3 over its first epoch (mostly its
# growing L2 penalty) against a start of ~2.5 (ln 10 + 0.2 of L2 at init): ~3.3x.
DIVERGENCE_FACTOR = 10.0


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose running loss breaks the divergence
    rule (DIVERGENCE_FACTOR); `reason` says what happened, or stays None."""

    def __init__(self, starting_loss: float | None):
        super().__init__()
        self.starting_loss, self.reason = starting_loss, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.reason:
            return
        loss = float(loss)
        if self.starting_loss is None and math.isfinite(loss):
            self.starting_loss = loss
        if not math.isfinite(loss):
            self.reason = f"non-finite training loss ({loss}) in epoch {self._epoch + 1}"
        elif loss > DIVERGENCE_FACTOR * self.starting_loss:
            self.reason = (f"training loss {loss:.3g} in epoch {self._epoch + 1} is over {DIVERGENCE_FACTOR:g}x "
                           f"the starting loss {self.starting_loss:.3g}")
        if self.reason:
            self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """Every finished epoch's logs and the starting loss, kept with the checkpoint
    (written atomically at each epoch's end), so a resumed run knows both."""

    def __init__(self, path: Path, guard: DivergenceGuard, epochs: list[dict]):
        super().__init__()
        self.path, self.guard, self.epochs = path, guard, epochs

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(v) for k, v in (logs or {}).items()})
        atomic_files.write_json(self.path, {"starting_loss": self.guard.starting_loss, "epochs": self.epochs})
