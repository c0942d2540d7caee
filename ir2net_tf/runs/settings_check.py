"""Every training setting and flag checked before anything is written.

``python -m train`` calls ``check_options`` (how to run) and ``Run`` calls
``check_settings`` (what to train) before the model directory is touched, so
that a mistyped flag costs a clear message and leaves nothing behind.
"""

import os
from typing import Optional

from absl import logging

from ir2net_tf import config, data, zoo

STAGES = config.STAGES
MAX_SEED = config.MAX_SEED

# The domain of every numeric training setting, from its field in
# ir2net_tf/config.py (the flag of the same name is defined with it).
DOMAINS = {n: s.domain for n, s in config.SETTINGS.items() if s.domain is not None and s.from_recipe}
# Settings that may be None (unset: the default applies).
OPTIONAL = {n for n, s in config.SETTINGS.items() if s.nullable}


# The builder argument each training flag sets (the builder's messages name the argument).
BUILDER_FLAGS = {"binarizer": "--binarizer", "weight_clip": "--weight_clip", "pad_values": "--pad_values",
                 "variant": "--variant", "recovery": "--recovery"}


def _as_flag_error(message: str, model: str, size: int) -> str:
    """The builder's refusal in the command's words: the flag behind the
    argument it names; a size it refuses is --image_size's."""
    argument = message.split(" ", 1)[0]
    if argument in BUILDER_FLAGS:
        return f"{BUILDER_FLAGS[argument]}{message[len(argument):]}"
    if argument == "input_shape" or "height and width" in message:
        return f"--image_size {size} does not fit {model}: {message}"
    return f"{model}: {message}"


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
    # The student's own options, as run.build_student passes them (binarizer
    # None: the model's own), so that the builder's one argument check sees them.
    binarizer = {"binarizer": settings["binarizer"]} if settings.get("binarizer") else {}
    try:
        model = zoo.build(
            spec.name, input_shape=(size, size, 3), num_classes=2, variant=settings["variant"],
            recovery=settings["recovery"], binary_weights=True, pad_values=settings["pad_values"],
            classifier_activation=None, weight_clip=settings.get("weight_clip", False), **binarizer,
        )
    except ValueError as error:
        raise ValueError(_as_flag_error(str(error), spec.name, size)) from error
    from ir2net_tf.export.convert import zero_padding_hazards

    hazards = zero_padding_hazards(model)
    if hazards:
        # Trains correctly; only its LCE export would compute these wrongly.
        # One-padding is advised only to a model that accepts it (larq-zoo's
        # pretrained networks fix their padding value).
        one_padding = " or --pad_values 1" if 1.0 in spec.option_values("pad_values") else ""
        logging.warning(
            "%s at --image_size %d with --pad_values 0 will not export correctly: LCE computes zero-padded "
            "binary convolutions on maps smaller than the kernel wrongly (%s). For a deployable model use a "
            "larger --image_size (≥ 96 for the ImageNet models)%s.",
            spec.name, size, ", ".join(hazards[:3]) + (" …" if len(hazards) > 3 else ""), one_padding,
        )


def check_settings(settings: dict) -> None:
    """Raises a ValueError naming the flag at fault for any training setting
    that cannot work (ranges, types, combinations)."""
    if settings.get("stage") not in STAGES:
        raise ValueError(f"Unknown stage {settings.get('stage')!r}; choose one of {STAGES} (--stage).")
    for name, domain in DOMAINS.items():
        if not (name in OPTIONAL and settings.get(name) is None):
            domain.check(settings.get(name), name)
    config.check(settings)  # types and choices of every setting given
    data.check_paths(settings["dataset"], settings.get("data_dir"))
    teacher = settings.get("teacher")
    if teacher and not os.path.exists(teacher):  # a missing path, or a name Keras Applications lacks
        if os.sep in teacher or teacher.endswith((".keras", ".h5")):
            raise ValueError(f"--teacher {teacher!r} does not exist; give a model saved with model.save(), a Keras "
                             "Applications name, or --teacher='' for no distillation.")
        from ir2net_tf.runs.teacher import _application

        _application(teacher)
    check_model(settings)


def check_options(*, mode: str, given: dict, init_weights: Optional[str], weights: Optional[str],
                  stage: Optional[str]) -> None:
    """The flags that say how to run.

    Args:
        mode: ``train`` or ``evaluate``.
        given: the training flags given on the command line (name → value).
        init_weights, weights: those flags' values (each flag's own range is
            checked where it is defined: flag_domains).
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
        if weights is not None and not os.path.isfile(weights):
            raise ValueError(f"--weights {weights!r} does not exist.")
        return
    if weights is not None:
        raise ValueError("--weights is only used with --mode evaluate; for training from weights, use "
                         "--init_weights (stage 2).")
    if init_weights is not None:
        if stage == "1":
            raise ValueError("--init_weights gives stage 2 its starting weights; --stage 1 would ignore it. "
                             "Drop it, or train --stage 2 or --stage both.")
        if not os.path.isfile(init_weights):
            raise ValueError(f"--init_weights {init_weights!r} does not exist; pass a stage-1 weights file "
                             "(e.g. RUN/stage1_final.weights.h5).")
