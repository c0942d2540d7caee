"""Keras callbacks that make a run survive: step-level checkpoints, a NaN
guard, per-epoch metrics, best/final weights, and a progress bar that counts
epochs over the whole stage although ``fit`` is called once per epoch."""

import math
import os
import signal
import time

import tensorflow as tf

from ir2net_tf.runs import artifacts, checkpoints, distribute
from ir2net_tf.runs.signals import StopSignals, Stopped


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
    epoch's metrics and keeps the best weights by validation accuracy, and
    stops with a checkpoint at the step boundary after SIGTERM or Ctrl-C.

    On a cluster every worker runs all of it, because saving weights and
    checkpoints are collective operations: only the chief's files are kept,
    the others write to temporary folders (``distribute.write_path``) that
    are removed at once. Every worker takes the same best-weights decision,
    from the chief's metrics file and the epoch's (all-reduced) metrics.
    """

    def __init__(self, *, stage, manager, epoch, step, student, model_dir, every, schedule, optimizer,
                 strategy=None, signals=None, checkpoint_dir=None, steps=None, last_row=None):
        super().__init__()
        self.stage, self.manager, self.epoch_var, self.step_var = stage, manager, epoch, step
        self.student, self.model_dir, self.every = student, model_dir, every
        self.schedule, self.optimizer_ref = schedule, optimizer
        self.strategy = strategy or tf.distribute.get_strategy()
        self.write = distribute.is_chief(self.strategy)
        self.signals, self.checkpoint_dir = signals, checkpoint_dir or manager.directory
        # The epoch's full number of steps: its last step is checkpointed by
        # the epoch's end, never alone (a checkpoint at the last step would
        # leave a resume nothing to train but the epoch's end to do).
        self.steps = steps
        # The last finished epoch's metrics row, as numbers (artifacts.ROW_VALUES),
        # kept in the checkpoint: metrics.csv and the stage's weights files are
        # written from it *after* the checkpoint, and written again on resume.
        self.last_row = last_row
        self.nan_at = None
        # A stop signal (here or on another worker): at an epoch's last step it
        # is taken after the epoch's end (run.py), which saves the checkpoint.
        self.stop_requested, self.stop_signal = False, None
        self._started = time.time()

    def position(self):
        """(stage, epoch, step) as a user counts them: the epoch in progress."""
        return self.stage, int(self.epoch_var.numpy()) + 1, int(self.step_var.numpy())

    def _save(self):
        checkpoints.save(self.manager, int(self.optimizer_ref.iterations.numpy()))
        distribute.remove_temporary(self.checkpoint_dir, self.strategy, folder=True)

    def _save_weights(self, kind):
        path = os.path.join(self.model_dir, artifacts.stage_weights(self.stage, kind))
        artifacts.save_weights(self.student, distribute.write_path(path, self.strategy))
        distribute.remove_temporary(path, self.strategy)

    def stopped(self) -> Stopped:
        """The Stopped error for a stop signal, once the checkpoint is saved."""
        received = self.stop_signal
        stage, epoch, step = self.position()
        cause = StopSignals.name(received) if received else "a stop signal on another worker"
        return Stopped(
            f"Stopped by {cause} in stage {stage}, epoch {epoch}, step {step} (optimizer step "
            f"{int(self.optimizer_ref.iterations.numpy())}); checkpoint saved in {self.checkpoint_dir}. "
            "Run the same command to resume.", received or signal.SIGTERM,
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_test_begin(self, logs=None):
        # Each replica keeps its own batch-norm running statistics; the saved
        # weights hold their average. Give every replica that average, so
        # that validation scores the weights that are saved.
        if self.strategy.num_replicas_in_sync > 1:
            for variable in self.student.non_trainable_variables:
                if variable.synchronization == tf.VariableSynchronization.ON_READ:
                    variable.assign(variable.read_value())

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            # The bad update is never checkpointed: the last save stays good.
            self.nan_at = (int(self.epoch_var.numpy()), int(self.step_var.numpy()) + 1)
            self.model.stop_training = True
            return
        self.step_var.assign_add(1)
        step = int(self.step_var.numpy())
        last = self.steps is not None and step >= self.steps
        received = self.signals.received if self.signals is not None else None
        if self.signals is not None and distribute.any_worker(self.strategy, received is not None):
            self.stop_requested, self.stop_signal = True, received
            if last:  # the epoch's end saves the checkpoint; the run stops after it
                return
            self._save()
            raise self.stopped()
        if self.every and step % self.every == 0 and not last:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_at is not None:
            return
        logs = dict(logs or {})
        values = dict(logs, seconds=round(time.time() - self._started, 2),
                      learning_rate=float(self.schedule(self.optimizer_ref.iterations)))
        self.epoch_var.assign(epoch + 1)
        self.step_var.assign(0)
        self.last_row.assign([float(values.get(c, math.nan)) for c in artifacts.ROW_VALUES])
        # The checkpoint first: it is what the run resumes from, and the files
        # below describe no more than it holds. Killed after it, the resumed
        # run writes them again (``publish``) before it trains on.
        self._save()
        self.publish()

    def publish(self):
        """Writes the last finished epoch (``last_row``) to the stage's best and
        final weights and then to metrics.csv, from the model as checkpointed
        at that epoch's end. Idempotent: a resume repeats it."""
        values = [float(v) for v in self.last_row.numpy()]
        if int(self.step_var.numpy()) != 0 or int(self.epoch_var.numpy()) == 0 or all(map(math.isnan, values)):
            return  # not at an epoch's end, or a checkpoint from before last_row existed
        epoch = int(self.epoch_var.numpy())  # as a user counts: the epoch just finished
        row = {c: v for c, v in zip(artifacts.ROW_VALUES, values) if not math.isnan(v)}
        metrics = os.path.join(self.model_dir, artifacts.METRICS)
        # This epoch's row may already be there (a redone epoch, a repeated
        # publish): compare with the others only, so that every worker
        # decides alike whenever it reads.
        earlier = [
            float(r["val_accuracy"] or "nan") for r in artifacts.read_metrics(metrics)
            if r["stage"] == str(self.stage) and r["epoch"] != str(epoch)
        ]
        accuracy = row.get("val_accuracy", math.nan)
        if accuracy >= max(earlier + [accuracy]):
            self._save_weights("best")
        self._save_weights("final")
        if self.write:
            artifacts.write_metric_row(metrics, dict(row, stage=self.stage, epoch=epoch))
