"""Keras callbacks that make a run survive: step-level checkpoints, a NaN
guard, per-epoch metrics, best/final weights, and a progress bar that counts
epochs over the whole stage although ``fit`` is called once per epoch."""

import math
import os
import time

import tensorflow as tf

from ir2net_tf.runs import artifacts


class NaNLoss(RuntimeError):
    pass


class Progress(tf.keras.callbacks.ProgbarLogger):
    """Keras's progress bar, showing "Epoch e/E" of the whole stage."""

    def __init__(self, total_epochs: int):
        super().__init__(count_mode="steps")
        self.total_epochs = total_epochs

    def set_params(self, params):
        # fit runs with verbose=0 so that Keras adds no second bar.
        super().set_params(dict(params, epochs=self.total_epochs, verbose=1))


class RunState(tf.keras.callbacks.Callback):
    """Counts steps into the checkpointed ``epoch``/``step`` variables, saves a
    checkpoint every ``every`` steps and at each epoch's end, records the
    epoch's metrics and keeps the best weights by validation accuracy.

    Only the chief (``write=True``) writes the run's files; every worker saves
    checkpoints, as ``tf.distribute`` requires.
    """

    def __init__(self, *, stage, manager, epoch, step, student, model_dir, every, schedule, optimizer, write=True):
        super().__init__()
        self.stage, self.manager, self.epoch_var, self.step_var = stage, manager, epoch, step
        self.student, self.model_dir, self.every = student, model_dir, every
        self.schedule, self.optimizer_ref, self.write = schedule, optimizer, write
        self.nan_at = None
        self._started = time.time()

    def _save(self):
        self.manager.save(checkpoint_number=int(self.optimizer_ref.iterations.numpy()))

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            # The bad update is never checkpointed: the last save stays good.
            self.nan_at = (int(self.epoch_var.numpy()), int(self.step_var.numpy()) + 1)
            self.model.stop_training = True
            return
        self.step_var.assign_add(1)
        if self.every and int(self.step_var.numpy()) % self.every == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_at is not None:
            return
        logs = dict(logs or {})
        self.epoch_var.assign(epoch + 1)
        self.step_var.assign(0)
        if self.write:
            row = dict(
                logs, stage=self.stage, epoch=epoch + 1, seconds=round(time.time() - self._started, 2),
                learning_rate=float(self.schedule(self.optimizer_ref.iterations)),
            )
            rows = artifacts.write_metric_row(os.path.join(self.model_dir, artifacts.METRICS), row)
            stage_rows = [r for r in rows if r["stage"] == str(self.stage)]
            best = max(float(r["val_accuracy"] or "nan") for r in stage_rows)
            if float(logs.get("val_accuracy", float("nan"))) >= best:
                artifacts.save_weights(self.student, os.path.join(self.model_dir, artifacts.stage_weights(self.stage, "best")))
            artifacts.save_weights(self.student, os.path.join(self.model_dir, artifacts.stage_weights(self.stage, "final")))
        # Checkpoint last: if killed before, the epoch's tail is redone and its
        # metrics row replaced.
        self._save()
