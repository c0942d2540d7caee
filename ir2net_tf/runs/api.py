"""Training and evaluation from Python, without flags.

``python -m train`` is a thin wrapper over these::

    from ir2net_tf.config import TrainConfig
    from ir2net_tf.runs import train

    result = train(TrainConfig(epochs=1, image_size=8, model_dir="runs/first"))
    print(result.final_accuracy, result.best_weights)

A run killed at any moment resumes when ``train`` is called again with the
same configuration (docs/troubleshooting.md, "Killed at any moment").
"""

import dataclasses
import os
from typing import List, Optional

from ir2net_tf.runs import artifacts


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished ``train`` call leaves.

    Attributes:
        model_dir: the run's folder (absolute).
        stage: the stage the configuration asked for last ("1" or "2").
        rows: every ``metrics.csv`` row of the run (dicts of strings).
        final_accuracy, best_accuracy: that stage's held-out top-1 at its
            last epoch and at its best (None when it trained no epoch).
        best_weights: the file ``python -m export --model-dir`` exports.
    """

    model_dir: str
    stage: str
    rows: List[dict]
    final_accuracy: Optional[float]
    best_accuracy: Optional[float]
    best_weights: str

    @classmethod
    def of(cls, model_dir: str, stage_setting: str, rows: List[dict]) -> "TrainResult":
        # The stage the run asked for (--stage 1 in a finished run: stage 1's).
        stage = "1" if stage_setting == "1" else "2"
        accuracies = [float(r["val_accuracy"]) for r in rows if r["stage"] == stage]
        return cls(model_dir=model_dir, stage=stage, rows=list(rows),
                   final_accuracy=accuracies[-1] if accuracies else None,
                   best_accuracy=max(accuracies) if accuracies else None,
                   best_weights=os.path.join(model_dir, artifacts.BEST_WEIGHTS))


def train(config) -> TrainResult:
    """Trains the run ``config`` (a ``TrainConfig``) describes, or resumes it.

    Raises:
        ValueError: a setting that cannot work, or a model directory holding
            another run (the message names the setting and the fix).
        ir2net_tf.runs.callbacks.NaNLoss, Stopped: the loss diverged; a stop
            signal arrived (the checkpoints saved until then are kept).
    """
    from ir2net_tf.runs import run

    runner = run.Run.from_config(config)
    rows = runner.train()
    return TrainResult.of(runner.model_dir, runner.settings["stage"], rows)


def evaluate(model_dir: Optional[str] = None, **kwargs) -> dict:
    """Top-1 / top-5 of a run's weights (``run.evaluate``: its arguments)."""
    from ir2net_tf.runs import run

    return run.evaluate(model_dir, **kwargs)
