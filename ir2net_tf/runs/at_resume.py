"""Which training settings a resumed run may change, declared once per setting.

Every ``python -m train`` flag has one ``Rule`` here: ``free`` (how to run:
verbosity, where the data or the TPU is, how often to save) or ``fixed``
(anything that changes the model, the data, the optimizer's state or the
numerics), each with the reason. ``model_dir.check_run`` compares a run
directory's ``config.json`` with the new command by these rules and refuses
a changed fixed setting in one line naming it (old → new) and the flags that
resume it; ``runs/cli.py`` appends the rule to each flag's ``--help`` and
refuses to define a flag without one; ``tests/test_resume_settings.py``
changes every setting in turn.

A setting missing from an older ``config.json`` (written before the setting
existed) counts as its ``default``: the value runs had before it could be
chosen, so an upgrade resumes every existing run.

The fixed settings that are options of ``run.Run`` rather than training
settings (``RUN_OPTIONS``) are stored with the training settings in
``config.json`` so that a resume can be judged against them.
"""

import dataclasses
import shlex
from typing import Any, Dict, List, Optional, Tuple

from ir2net_tf.runs.recipes import DEFAULTS as RECIPE_DEFAULTS


@dataclasses.dataclass(frozen=True)
class Rule:
    may_change: bool
    reason: str
    default: Any = None  # a config.json without the key: this value


def free(reason: str, default=None) -> Rule:
    return Rule(True, reason, default)


def fixed(reason: str, default=None) -> Rule:
    return Rule(False, reason, default)


def _recipe(name: str):
    return RECIPE_DEFAULTS[name]


# Run options (run.Run keyword arguments, not recipe settings) that a resume may
# not change; their defaults are the flags' and Run's (tests check all three agree).
RUN_OPTIONS = {"strategy": "default", "mixed_precision": False, "jit_compile": False,
               "restriction_shortcut": True, "init_weights": None}

RULES: Dict[str, Rule] = {
    # What is trained.
    "recipe": fixed("fills in every setting not given, so it selects the run's model, data and optimizer"),
    "model": fixed("the network"),
    "variant": fixed("the recovery head: another model", _recipe("variant")),
    "binarizer": fixed("the binary convolutions' quantizers: another model"),
    "recovery": fixed("with or without the recovery head: another model", _recipe("recovery")),
    "pad_values": fixed("the binary convolutions' padding: other numbers", _recipe("pad_values")),
    # Runs from before the flag existed clipped (docs/ir2_step.md): True when absent.
    "weight_clip": fixed("clipping the latent weights changes every update", True),
    "image_size": fixed("the model's input and the data it sees"),
    # The data.
    "dataset": fixed("the data"),
    "train_split": fixed("which examples train the model"),
    "validation_split": fixed("which examples choose the best weights"),
    "augment": fixed("the training images themselves", _recipe("augment")),
    "seed": fixed("the data order, augmentation and initialization", _recipe("seed")),
    "batch_size": fixed("the steps, the checkpoint's position in the epoch and every update"),
    "steps_per_epoch": fixed("the epoch's length: the schedule and the checkpoint's position"),
    "data_dir": free("where the data is stored, not which data (--dataset and the splits say that)"),
    "manual_dir": free("where ImageNet's tar files are, not which data"),
    # The optimization.
    "epochs": fixed("the learning-rate schedule spans all epochs: a longer run decays differently"),
    "optimizer": fixed("the optimizer's state in the checkpoint"),
    "learning_rate": fixed("the schedule the optimizer follows"),
    "lr_schedule": fixed("the schedule the optimizer follows", "cosine"),
    "warmup_epochs": fixed("the schedule the optimizer follows", 0.0),
    "warmup_learning_rate": fixed("the schedule the optimizer follows"),
    "momentum": fixed("the optimizer's update", _recipe("momentum")),
    "weight_decay": fixed("the loss's gradient"),
    "weight_decay_scope": fixed("the loss's gradient"),
    "stage2_weight_decay": fixed("stage 2's gradient", _recipe("stage2_weight_decay")),
    "restriction_lambda": fixed("what restriction erases: the loss", _recipe("restriction_lambda")),
    "normalization": fixed("the restriction mask: the loss", _recipe("normalization")),
    "teacher": fixed("the distillation loss", ""),
    "init_weights": fixed("stage 2's starting weights", RUN_OPTIONS["init_weights"]),
    # The numerics.
    "mixed_precision": fixed("float16 compute: other numbers, and loss-scale state in the checkpoint",
                             RUN_OPTIONS["mixed_precision"]),
    "jit_compile": fixed("XLA fuses and rounds differently: other numbers", RUN_OPTIONS["jit_compile"]),
    "restriction_shortcut": fixed("equals the second pass up to rounding, not bit for bit (tests/test_ir2_step.py)",
                                  RUN_OPTIONS["restriction_shortcut"]),
    "strategy": fixed("replicas split the batch and sum the gradients in another order: other numbers",
                      RUN_OPTIONS["strategy"]),
    # How to run: the same run either way.
    "stage": free("which of the run's stages to train now (1, 2 or both)"),
    "mode": free("train, or evaluate the run's weights"),
    "model_dir": free("the run's folder itself"),
    "overwrite": free("what to do with a different run, not how to train this one"),
    "checkpoint_every": free("how often progress is saved; the weights do not depend on it"),
    "tpu": free("which TPU, not how it computes"),
    "cluster_timeout": free("how long workers wait for each other at start-up"),
    "weights": free("--mode evaluate only (training refuses it)"),
    "padding": free("--mode evaluate only (training refuses it)"),
    "verbose": free("progress bars"),
}

FIXED = tuple(name for name, rule in RULES.items() if not rule.may_change)


def _value(settings: dict, name: str):
    rule = RULES.get(name)
    return settings.get(name, rule.default if rule else None)


def changed_fixed(old: dict, new: dict) -> List[Tuple[str, Any, Any]]:
    """``(name, old value, new value)`` of every setting that differs between
    a run's stored settings ``old`` and a new command's ``new`` and may not
    change at resume. A setting neither rule nor flag knows counts as fixed;
    a missing one as its ``default``."""
    names = sorted(n for n in set(old) | set(new) if not (n in RULES and RULES[n].may_change))
    return [(n, _value(old, n), _value(new, n)) for n in names if _value(old, n) != _value(new, n)]


def as_flag(name: str, value) -> Optional[str]:
    """The ``python -m train`` flag that sets ``name`` to ``value``; None when
    the value is "unset" (no flag sets it: leave the flag out)."""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if value is None:
        return None
    return f"--{name}={shlex.quote(str(value))}"


def refusal(model_dir: str, changes: List[Tuple[str, Any, Any]]) -> str:
    """The one-line refusal of a resume that changes fixed settings."""
    details = ", ".join(f"{n}: {o!r} → {v!r}" for n, o, v in changes)
    why = "; ".join(f"{n}: {RULES[n].reason}" for n, _, _ in changes if n in RULES)
    restore = [as_flag(n, o) for n, o, _ in changes]
    given = [f for f in restore if f]
    dropped = [f"--{n}" for (n, _, _), f in zip(changes, restore) if f is None]
    fix = " ".join(given) + (" and " if given and dropped else "") + (
        f"without {', '.join(dropped)}" if dropped else "")
    return (
        f"The model directory {model_dir!r} holds a different run ({details}); a resume cannot change "
        f"{'these' if len(changes) > 1 else 'this'} ({why}). Resume it with {fix} as it was started, use another "
        "--model_dir, or pass --overwrite to delete it and start afresh."
    )
