"""The model directory: checks, the run's config, refusing to mix runs."""

import os
import shutil

from ir2net_tf._util import files
from ir2net_tf.runs import artifacts, at_resume, lock


def prepare(model_dir: str) -> str:
    """The absolute model directory, created, checked writable."""
    return files.check_writable_dir(model_dir, option="--model_dir")


# What our tools write into a model directory besides artifacts' files:
# `python -m export`'s default output and `python -m zoo show-restriction`'s.
EXPORT_FILES = ("model.tflite", "model.json")
RESTRICTION_DIR = "restriction"
# Keys every config.json of ours has (model_config below).
CONFIG_KEYS = ("model", "input_shape", "num_classes", "weights", "stages_completed", "training")


def read_our_config(model_dir: str):
    """The directory's config.json when a run of ours wrote it; None when
    there is none; a ValueError naming the file when it is someone else's."""
    path = os.path.join(model_dir, artifacts.CONFIG)
    if not os.path.exists(path):
        return None
    try:
        config = artifacts.read_json(path)
    except (OSError, ValueError):
        config = None
    if not (isinstance(config, dict) and all(k in config for k in CONFIG_KEYS)
            and isinstance(config["training"], dict)):
        raise ValueError(
            f"{path!r} was not written by `python -m train` (it lacks the keys {list(CONFIG_KEYS)}), so "
            f"{model_dir!r} is not a model directory of ours; nothing was changed. Choose another --model_dir."
        )
    return config


def has_started(model_dir: str, config: dict) -> bool:
    """Whether the run in ``model_dir`` trained anything worth keeping: a
    completed stage, a metrics row or a checkpoint. A run that failed before
    its first step has none of these and may be replaced freely."""
    if config.get("stages_completed") or os.path.exists(os.path.join(model_dir, artifacts.METRICS)):
        return True
    checkpoints = os.path.join(model_dir, artifacts.CHECKPOINTS)
    return any(name.startswith("ckpt-") for _, _, names in os.walk(checkpoints) for name in names)


def check_run(model_dir: str, training: dict, overwrite: bool):
    """(saved config, whether the directory must be emptied first), deleting
    nothing yet: the saved config when ``model_dir`` holds this same run (to
    resume), ``({}, True)`` when it holds another run that ``overwrite`` (or
    its never having reached a first step) lets us replace, ``({}, False)``
    when it holds none. The same run: no setting that ``at_resume.RULES``
    fixes for a run differs (a setting its config.json lacks counts as that
    setting's default). Raises ValueError for a different run without
    ``overwrite`` and for files that are not ours."""
    saved = read_our_config(model_dir)
    if saved is None:
        return {}, False
    changes = at_resume.changed_fixed(saved.get("training", {}), training)
    if not changes:
        return saved, False
    if not overwrite and has_started(model_dir, saved):
        raise ValueError(at_resume.refusal(model_dir, changes))
    _refuse_foreign(model_dir)
    return {}, True


def check_or_reset(model_dir: str, training: dict, overwrite: bool) -> dict:
    """``check_run``, then the replaced run's files deleted (only those)."""
    saved, reset = check_run(model_dir, training, overwrite)
    if reset:
        remove_run(model_dir)
    return saved


def _our_file(name: str) -> bool:
    stage_weights = {artifacts.stage_weights(stage, kind) for stage in ("1", "2") for kind in ("best", "final")}
    names = {artifacts.CONFIG, artifacts.METRICS, lock.LOCK, artifacts.CURVES, artifacts.BEST_WEIGHTS,
             artifacts.FINAL_WEIGHTS, *stage_weights, *EXPORT_FILES}
    # files.atomic_save's temporary files, left only by a killed process.
    temporary = name.startswith(".") and ".tmp" in name and name[1:].split(".tmp")[0].rsplit(".", 1)[0] in names
    return name in names or temporary


def _foreign_in_tree(root: str, top_level, file_ok) -> list:
    """Paths under ``root`` that a run of ours would not have written."""
    foreign = []
    for name in sorted(os.listdir(root)):
        if name not in top_level or not os.path.isdir(os.path.join(root, name)):
            foreign.append(os.path.join(root, name))
            continue
        for folder, _, names in os.walk(os.path.join(root, name)):
            foreign += [os.path.join(folder, n) for n in sorted(names) if not file_ok(n)]
    return foreign


def foreign_files(model_dir: str) -> list:
    """Everything in ``model_dir`` that no run of ours (nor our export or
    show-restriction into it) wrote."""
    stages = ("stage1", "stage2")
    foreign = []
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if name == artifacts.CHECKPOINTS and os.path.isdir(path):
            # tf.train.CheckpointManager's files, and the temporary ones
            # ("checkpoint.tmp…", "ckpt-N_temp/part-…") a killed save leaves.
            foreign += _foreign_in_tree(path, stages, lambda n: n.startswith(("checkpoint", "ckpt-", "part-")))
        elif name == artifacts.LOGS and os.path.isdir(path):
            foreign += _foreign_in_tree(path, stages, lambda n: n.startswith("events.out.tfevents."))
        elif name == RESTRICTION_DIR and os.path.isdir(path):
            foreign += [os.path.join(path, n) for n in sorted(os.listdir(path))
                        if not (n.endswith(".png") or n == "masks.npz") or os.path.isdir(os.path.join(path, n))]
        elif name.startswith(".write-test-") or (os.path.isfile(path) and _our_file(name)):
            continue
        else:
            foreign.append(path)
    return foreign


def _refuse_foreign(model_dir: str) -> None:
    foreign = foreign_files(model_dir)
    if foreign:
        shown = ", ".join(os.path.relpath(p, model_dir) for p in foreign[:8])
        more = f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        raise ValueError(
            f"Replacing the run in {model_dir!r} would delete files no run of ours wrote: {shown}{more}. "
            "Nothing was deleted. Move them away, or choose another --model_dir."
        )


def remove_run(model_dir: str) -> None:
    """Deletes a run of ours from ``model_dir``; refuses, deleting nothing,
    when the directory holds anything else (the user's own files)."""
    _refuse_foreign(model_dir)
    for name in os.listdir(model_dir):
        if name == lock.LOCK:  # the replacing run's own
            continue
        path = os.path.join(model_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
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
