"""Every training setting and flag checked before anything is written.

``python -m train`` calls ``check_options`` (how to run) and ``Run`` calls
``check_settings`` (what to train) before the model directory is touched, so
that a mistyped flag costs a clear message and leaves nothing behind.
"""

import math
import os
from typing import Optional

from absl import logging

from ir2net_tf import data, zoo

STAGES = ("1", "2", "both")
PAD_VALUES = (0.0, 1.0)
MAX_SEED = 2**32 - 1  # what NumPy's seed accepts (tf.keras.utils.set_random_seed seeds NumPy too)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(settings: dict, name: str, low, *, integer: bool, hint: str = "") -> None:
    value = settings.get(name)
    if not (_is_int(value) if integer else _is_number(value)) or value < low:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"--{name} must be {kind} ≥ {low}; got {value!r}.{hint}")


def check_model(settings: dict) -> None:
    """The model, variant, input size, padding and head: builds the student
    once (no weights), so that every combination the builder refuses is
    refused here, with the builder's message, before any file is written."""
    spec = zoo.get_spec(settings["model"])
    spec.parse_variant(settings["variant"])  # an unknown variant names the choices
    if settings["recovery"] and not spec.has_recovery:
        raise ValueError(
            f"--recovery: {spec.name} has no recovery head (the IR-Net models are the bare baselines). Drop "
            "--recovery (or pass --norecovery), or train an IR² model with --binarizer irnet for IR-Net's "
            "binarization with a recovery head."
        )
    size = settings["image_size"]
    try:
        model = zoo.build(
            spec.name, input_shape=(size, size, 3), num_classes=2, variant=settings["variant"],
            recovery=settings["recovery"], binary_weights=True, pad_values=settings["pad_values"],
            classifier_activation=None,
        )
    except ValueError as error:
        raise ValueError(f"--image_size {size} does not fit {spec.name}: {error}") from error
    from ir2net_tf.deploy import zero_padding_hazards

    hazards = zero_padding_hazards(model)
    if hazards:
        # Trains correctly; only its LCE export would compute these wrongly.
        logging.warning(
            "%s at --image_size %d with --pad_values 0 will not export correctly: LCE computes zero-padded "
            "binary convolutions on maps smaller than the kernel wrongly (%s). For a deployable model use a "
            "larger --image_size (≥ 96 for the ImageNet models) or --pad_values 1.",
            spec.name, size, ", ".join(hazards[:3]) + (" …" if len(hazards) > 3 else ""),
        )


def check_settings(settings: dict) -> None:
    """Raises a ValueError naming the flag at fault for any training setting
    that cannot work (ranges, types, combinations)."""
    if settings.get("stage") not in STAGES:
        raise ValueError(f"Unknown stage {settings.get('stage')!r}; choose one of {STAGES} (--stage).")
    _at_least(settings, "epochs", 1, integer=True)
    _at_least(settings, "batch_size", 1, integer=True)
    _at_least(settings, "image_size", 1, integer=True)
    _at_least(settings, "seed", 0, integer=True)
    if settings.get("steps_per_epoch") is not None:
        _at_least(settings, "steps_per_epoch", 0, integer=True, hint=" (0: the whole epoch)")
    if settings["seed"] > MAX_SEED:
        raise ValueError(f"--seed must be at most {MAX_SEED}; got {settings['seed']}.")
    rate = settings.get("learning_rate")
    if not _is_number(rate) or rate <= 0:
        raise ValueError(f"--learning_rate must be a number > 0; got {rate!r}.")
    momentum = settings.get("momentum")
    if not _is_number(momentum) or not 0 <= momentum < 1:
        raise ValueError(f"--momentum must be in [0, 1); got {momentum!r}.")
    for name in ("weight_decay", "restriction_lambda"):
        _at_least(settings, name, 0, integer=False)
    if settings.get("stage2_weight_decay") is not None:
        _at_least(settings, "stage2_weight_decay", 0, integer=False)
    if settings.get("pad_values") not in PAD_VALUES:
        raise ValueError(f"--pad_values must be 0 or 1 (what LCE supports); got {settings.get('pad_values')!r}.")
    data.check_paths(settings["dataset"], settings.get("data_dir"))
    check_model(settings)


def check_options(*, mode: str, given: dict, checkpoint_every: int, init_weights: Optional[str],
                  weights: Optional[str], stage: Optional[str], verbose: int) -> None:
    """The flags that say how to run.

    Args:
        mode: ``train`` or ``evaluate``.
        given: the training flags given on the command line (name → value).
        checkpoint_every, init_weights, weights, verbose: those flags' values.
        stage: the resolved ``--stage`` (None in evaluate mode).
    """
    if mode == "evaluate":
        # A run's directory names its model; --model names a zoo model whose
        # options the weights file must fit.
        applies = {"data_dir", "batch_size", "dataset", "image_size"}
        if "model" in given:
            applies |= {"model", "variant", "pad_values", "recovery"}
        ignored = sorted(set(given) - applies)
        if ignored:
            raise ValueError(
                f"--mode evaluate ignores {', '.join('--' + n for n in ignored)}; drop them (it takes "
                "--model_dir or --model [--variant --padding --pad_values --recovery] with --weights, and "
                "--dataset, --data_dir, --image_size, --batch_size)."
            )
        if given.get("batch_size") is not None and (not _is_int(given["batch_size"]) or given["batch_size"] < 1):
            raise ValueError(f"--batch_size must be an integer ≥ 1; got {given['batch_size']!r}.")
        if weights is not None and not os.path.isfile(weights):
            raise ValueError(f"--weights {weights!r} does not exist.")
        return
    if weights is not None:
        raise ValueError("--weights is only used with --mode evaluate; for training from weights, use "
                         "--init_weights (stage 2).")
    if not _is_int(checkpoint_every) or checkpoint_every < 1:
        raise ValueError(f"--checkpoint_every must be an integer ≥ 1; got {checkpoint_every!r}.")
    if verbose not in (0, 1):
        raise ValueError(f"--verbose must be 0 or 1; got {verbose!r}.")
    if init_weights is not None:
        if stage == "1":
            raise ValueError("--init_weights gives stage 2 its starting weights; --stage 1 would ignore it. "
                             "Drop it, or train --stage 2 or --stage both.")
        if not os.path.isfile(init_weights):
            raise ValueError(f"--init_weights {init_weights!r} does not exist; pass a stage-1 weights file "
                             "(e.g. RUN/stage1_final.weights.h5).")
