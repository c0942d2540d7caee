"""Training and evaluation from Python, without flags.

``python -m train`` is a thin wrapper over these::

    from ir2net_tf.config import TrainConfig
    from ir2net_tf.runs import train

    result = train(TrainConfig(epochs=1, image_size=16, model_dir="runs/first"))
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


def evaluate(model_dir=None, *, model=None, weights=None, dataset=None, image_size=None, data_dir=None,
             batch_size=None, verbose=1, **options) -> dict:
    """Top-1 / top-5 of saved weights on a validation split.

    Args:
        model_dir: a training run: its best weights (or ``weights``) on its
            held-out split (or ``dataset``).
        model: instead of a run, a zoo model name; ``weights`` (any weights
            file, e.g. from ``python -m zoo import-pytorch``) and ``dataset``
            are then required.
        weights: the weights file.
        dataset: digits, a tensorflow-datasets name or an image folder.
        image_size: the input size for ``model`` (its zoo default otherwise).
        data_dir: the tensorflow-datasets data directory.
        batch_size: evaluation batch size (the run's, else 64).
        verbose: progress bar (1) or none (0).
        **options: zoo.build options for ``model`` (variant, padding,
            pad_values, recovery); the weights file is checked against them.

    Returns:
        ``{"top1", "top5", "examples", "dataset", "weights"}``.
    """
    from ir2net_tf import data, zoo
    from ir2net_tf.export import evaluation
    from ir2net_tf.runs import loading

    if model is None:
        loaded = loading.load_run(model_dir, weights=weights, logits=True)
        keras_model, weights = loaded.model, loaded.weights
        if dataset is None:
            ds = loaded.dataset(data_dir)
        else:
            ds = data.load(dataset, image_size=keras_model.input_shape[1], data_dir=data_dir)
        batch_size = batch_size or loaded.settings.get("batch_size")
    else:
        if not weights or not dataset:
            raise ValueError("Evaluating a zoo model needs a weights file and a dataset: --weights FILE --dataset D.")
        ds = data.load(dataset, image_size=image_size or zoo.get_spec(model).input_size, data_dir=data_dir)
        keras_model = loading.build_model(model, weights=weights, input_size=ds.image_size, logits=True,
                                          num_classes=ds.num_classes, **options)
    result = evaluation.measure_accuracy(keras_model, ds, batch_size=batch_size or 64, progress=verbose > 0)
    return {"top1": result["keras"]["top1"], "top5": result["keras"]["top5"], "examples": result["examples"],
            "dataset": ds.name, "weights": weights}
