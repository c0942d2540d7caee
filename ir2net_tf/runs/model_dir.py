"""The model directory: checks, the run's config, refusing to mix runs."""

import os
import shutil
import tempfile

from ir2net_tf.runs import artifacts

# Settings that may change between invocations of the same run: what to do,
# not what is trained.
_NOT_IDENTITY = ("stage",)


def prepare(model_dir: str) -> str:
    model_dir = os.path.abspath(os.path.expanduser(model_dir))
    try:
        os.makedirs(model_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=model_dir, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(
            f"The model directory {model_dir!r} is not writable ({error.strerror or error}); "
            "choose another --model_dir."
        ) from error
    return model_dir


def identity(training: dict) -> dict:
    return {k: v for k, v in training.items() if k not in _NOT_IDENTITY}


def check_or_reset(model_dir: str, training: dict, overwrite: bool) -> dict:
    """The directory's saved config when it holds this same run (to resume);
    an empty dict for a fresh run. A different run is refused unless
    ``overwrite``, which deletes the previous run's files (only those)."""
    path = os.path.join(model_dir, artifacts.CONFIG)
    if not os.path.exists(path):
        return {}
    saved = artifacts.read_json(path)
    old, new = identity(saved.get("training", {})), identity(training)
    if old == new:
        return saved
    if not overwrite:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        details = ", ".join(f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in changed)
        raise ValueError(
            f"The model directory {model_dir!r} holds a different run ({details}). Use another "
            "--model_dir, repeat the original flags to resume it, or pass --overwrite to delete it "
            "and start afresh."
        )
    remove_run(model_dir)
    return {}


def remove_run(model_dir: str) -> None:
    for name in os.listdir(model_dir):
        path = os.path.join(model_dir, name)
        if name in (artifacts.CHECKPOINTS, artifacts.LOGS):
            shutil.rmtree(path)
        elif name.endswith(".weights.h5") or name in (artifacts.CONFIG, artifacts.METRICS, artifacts.CURVES):
            os.remove(path)


def model_config(settings: dict, num_classes: int, binary_weights: bool, stages_completed) -> dict:
    """config.json: what ``python -m export`` needs to rebuild the model
    (top-level keys) and the training settings that identify the run."""
    size = settings["image_size"]
    return {
        "model": settings["model"],
        "variant": settings["variant"],
        "input_shape": [size, size, 3],
        "num_classes": num_classes,
        "dataset": settings["dataset"],
        "pad_values": settings["pad_values"],
        "binary_weights": binary_weights,
        "recovery": settings["recovery"],
        "binarizer": settings.get("binarizer"),  # None: the model's own
        # The saved weights come from a model built with logits; they load
        # unchanged into one built with "softmax".
        "classifier_activation": None,
        "weights": {"best": artifacts.BEST_WEIGHTS, "final": artifacts.FINAL_WEIGHTS},
        "stages_completed": list(stages_completed),
        "training": settings,
    }
