"""The training configuration: every ``python -m train`` setting, declared once.

``TrainConfig`` is a frozen dataclass. Each field carries, in its
``Setting``: the type, the help text, the valid domain (a ``Domain`` for
numbers, ``choices`` for words, a ``PathArg`` for paths), the value it takes
when neither a recipe nor the caller sets it, whether a run stores it in
``config.json``, and whether a resumed run may change it (with the reason).
Everything else is derived from these fields:

- the ``python -m train`` flags (``runs/cli.py`` defines one per field),
- the recipes' keys (``runs/recipes.py``: a recipe is a partial
  configuration, checked against the fields),
- the settings check (``runs/settings_check.py``: each value against its domain),
- ``config.json``'s ``training`` block and the rule for a resume
  (``runs/at_resume.py``), including what a key missing from an older
  ``config.json`` counts as,
- the table of docs/training-settings.md (``python -m ir2net_tf.config``
  prints it; tests/test_config.py checks the file against it).

Adding a setting is one field here, for example::

    label_smoothing: Optional[float] = setting(
        float, "Label smoothing of the cross-entropy.", fallback=0.0,
        domain=fraction(), fixed="the loss", missing=0.0)

``missing`` is what runs written before the field existed used: they resume
unchanged when it equals the new default, and are refused (naming the flag
that resumes them) when the new field changes what the run computes.

From Python::

    from ir2net_tf.config import TrainConfig
    from ir2net_tf.runs import train
    result = train(TrainConfig(epochs=1, image_size=16, model_dir="runs/first"))
"""

import dataclasses
from typing import Any, Dict, Optional, Tuple

from ir2net_tf.addresses import Addresses
from ir2net_tf.flag_domains import Domain, at_least, fraction, one_of, positive
from ir2net_tf.path_args import DIR, FILE, WEIGHTS_SUFFIXES, PathArg

# What LCE's binary convolutions can pad with (ir2net_tf.nn.layers checks
# builders' arguments against it).
PAD_VALUES = (0.0, 1.0)
STAGES = ("1", "2", "both")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
BINARIZERS = ("bireal", "irnet")  # "bireal": IR²Net's approx_sign/ste_sign; "irnet": IR-Net's EDE/Libra-PB
NORMALIZATIONS = ("height", "global")
OPTIMIZERS = ("sgd", "sgd_nesterov", "adam")
WEIGHT_DECAY_SCOPES = ("all", "conv")
SCHEDULES = ("cosine", "step")
AUGMENTATIONS = ("auto", "cifar", "imagenet", "shift", "none")
MAX_SEED = 2**32 - 1  # what NumPy's seed accepts (tf.keras.utils.set_random_seed seeds NumPy too)
_SAME = object()  # ``missing`` not given: the same as the default


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one field of ``TrainConfig`` is (the field's metadata).

    Attributes:
        type: str, int, float or bool.
        help: the flag's help text.
        from_recipe: the flag defaults to None and the recipe fills it in;
            otherwise the field's own default is the flag's.
        fallback: the value when neither the recipe nor the caller sets it
            (from_recipe settings).
        domain, choices, path, addresses: the valid values (numbers, words,
            paths, server addresses).
        nullable: None is a valid resolved value ("unset": the documented
            default behaviour, e.g. ``binarizer`` None is the model's own).
        may_change: whether a resumed run may change it; ``reason`` says why.
        missing: what a ``config.json`` without the key counts as.
        stored: whether the run keeps it in ``config.json`` (its identity).
    """

    type: type
    help: str
    from_recipe: bool = True
    fallback: Any = None
    domain: Optional[Domain] = None
    choices: Optional[Tuple] = None
    path: Optional[PathArg] = None
    addresses: Optional[Addresses] = None
    nullable: bool = False
    may_change: bool = False
    reason: str = ""
    missing: Any = None
    stored: bool = True

    def check(self, name: str, value) -> Any:
        """``value`` converted to the type (an int for a float setting is a
        float); a ValueError naming the setting and its domain otherwise."""
        if value is None:
            return value
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"--{name} must be True or False; got {value!r}.")
        elif self.type in (int, float):
            if self.domain is not None:
                self.domain.check(value, name)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"--{name} must be a number; got {value!r}.")
            value = float(value) if self.type is float else value
        elif not isinstance(value, str):
            raise ValueError(f"--{name} must be a string; got {value!r}.")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"--{name} must be one of {', '.join(map(str, self.choices))}; got {value!r}.")
        if self.addresses is not None and self.addresses.problem(value):
            raise ValueError(f"--{name} {self.addresses.problem(value)}.")
        return value


def setting(type_, help, *, fallback=None, fixed=None, free=None, missing=_SAME, default=None,
            run_option=False, stored=True, **kwargs):
    """A ``TrainConfig`` field: exactly one of ``fixed=reason`` (a resume
    may not change it) or ``free=reason``. ``run_option`` settings say how
    to run (their own ``default``, not the recipe's)."""
    if (fixed is None) == (free is None):
        raise TypeError("a setting is either fixed=reason or free=reason")
    value = default if run_option else fallback
    meta = Setting(type_, help, from_recipe=not run_option, fallback=value, may_change=free is not None,
                   reason=fixed or free, missing=value if missing is _SAME else missing, stored=stored, **kwargs)
    return dataclasses.field(default=default, metadata={"setting": meta})


_WEIGHTS = PathArg(FILE, suffixes=WEIGHTS_SUFFIXES, checkpoint=True, what="a weights file")
_SAME_MODEL = "another model"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. Fields left None take the recipe's value (``recipe``:
    by default the digits demo, ImageNet's for ``dataset="imagenet2012"``,
    else the model's paper recipe), then the setting's fallback;
    ``resolved()`` shows the outcome. docs/training-settings.md lists them."""

    # What is trained.
    recipe: Optional[str] = setting(
        str, "Preset (docs/recipes.md). Default: digits, or imagenet for --dataset imagenet2012, or the model's "
        "paper recipe for other datasets.",
        fixed="fills in every setting not given, so it selects the run's model, data and optimizer")
    model: Optional[str] = setting(str, "Zoo model name (`python -m zoo list`).", fixed="the network")
    variant: Optional[str] = setting(
        str, "Model variant (`python -m zoo list` shows each model's; unset = the paper's head).", nullable=True,
        fixed=f"the recovery head: {_SAME_MODEL}")
    binarizer: Optional[str] = setting(
        str, "Binary convolutions' quantizers: bireal (IR²Net's approx_sign/ste_sign) or irnet (IR-Net's "
        "EDE/Libra-PB); default: the model's own.", choices=BINARIZERS, nullable=True,
        fixed=f"the binary convolutions' quantizers: {_SAME_MODEL}")
    recovery: Optional[bool] = setting(
        bool, "Information recovery head (false: bare backbone baseline).", fallback=True,
        fixed=f"with or without the recovery head: {_SAME_MODEL}")
    pad_values: Optional[float] = setting(
        float, "Padding value of binary convolutions (what LCE supports).", fallback=0.0,
        domain=one_of(*PAD_VALUES), fixed="the binary convolutions' padding: other numbers")
    weight_clip: Optional[bool] = setting(
        bool, "Clip latent binary weights to [-1, 1] after every update (Larq's weight_clip); default off, as "
        "the reference: a latent weight beyond ±1 keeps its value.", fallback=False,
        # Runs from before the flag existed clipped (docs/ir2_step.md).
        fixed="clipping the latent weights changes every update", missing=True)
    image_size: Optional[int] = setting(int, "Input height and width.", domain=at_least(1),
                                        fixed="the model's input and the data it sees")
    # The data.
    dataset: Optional[str] = setting(
        str, "digits, a tensorflow-datasets name (cifar10, cifar100, imagenet2012, ...) or a folder of images "
        "with one sub-folder per class.", fixed="the data")
    data_dir: Optional[str] = setting(
        str, "tensorflow-datasets data directory.", nullable=True,
        path=PathArg(DIR, what="an existing folder (create it first to download into it)"),
        free="where the data is stored, not which data (--dataset and the splits say that)")
    manual_dir: Optional[str] = setting(
        str, "Where the manually downloaded files are (ImageNet's two tar files); default "
        "<data_dir>/downloads/manual.", nullable=True, path=PathArg(DIR, what="the folder of the tar files"),
        free="where ImageNet's tar files are, not which data")
    train_split: Optional[str] = setting(
        str, "tensorflow-datasets split to train on, sliced for a smoke test: e.g. train[:1%] or train[:512] "
        "(default: train).", nullable=True, fixed="which examples train the model")
    validation_split: Optional[str] = setting(
        str, "tensorflow-datasets split to evaluate on, e.g. validation[:64] (default: validation, else test).",
        nullable=True, fixed="which examples choose the best weights")
    augment: Optional[str] = setting(str, "Training augmentation.", fallback="auto",
                                     choices=AUGMENTATIONS,
                                     fixed="the training images themselves")
    seed: Optional[int] = setting(int, "Seed of data order, augmentation and initialization.", fallback=0,
                                  domain=at_least(0, high=MAX_SEED),
                                  fixed="the data order, augmentation and initialization")
    batch_size: Optional[int] = setting(
        int, "Global batch size (split over the replicas).", domain=at_least(1),
        fixed="the steps, the checkpoint's position in the epoch and every update")
    steps_per_epoch: Optional[int] = setting(
        int, "At most N steps an epoch (the epoch's first N batches), e.g. 2 for a smoke test of a cluster; 0 "
        "or unset: the whole training split.", domain=at_least(0), nullable=True,
        fixed="the epoch's length: the schedule and the checkpoint's position")
    # The optimization.
    stage: Optional[str] = setting(
        str, "1: real weights, binary activations; 2: binary weights (from stage 1's weights when present); "
        "both: 1 then 2 in one model directory.", choices=STAGES,
        free="which of the run's stages to train now (1, 2 or both)")
    epochs: Optional[int] = setting(
        int, "Epochs per stage.", domain=at_least(1),
        fixed="the learning-rate schedule spans all epochs: a longer run decays differently")
    optimizer: Optional[str] = setting(str, "Optimizer.", choices=OPTIMIZERS,
                                       fixed="the optimizer's state in the checkpoint")
    learning_rate: Optional[float] = setting(float, "Peak learning rate (cosine decay to 0 over the stage).",
                                             domain=positive(), fixed="the schedule the optimizer follows")
    lr_schedule: Optional[str] = setting(
        str, "cosine to 0 (default), or step: ×0.1 at 30/60/90 % of the stage after --warmup_epochs (IR-Net's "
        "ImageNet schedule).", fallback="cosine", choices=SCHEDULES,
        fixed="the schedule the optimizer follows")
    warmup_epochs: Optional[float] = setting(
        float, "--lr_schedule step: linear warm-up epochs (may be fractional).", fallback=0.0,
        domain=at_least(0, integer=False), fixed="the schedule the optimizer follows")
    warmup_learning_rate: Optional[float] = setting(
        float, "--lr_schedule step: the rate the warm-up starts from.", domain=at_least(0, integer=False),
        nullable=True, fixed="the schedule the optimizer follows")
    momentum: Optional[float] = setting(float, "SGD momentum.", fallback=0.9, domain=fraction(below_one=True),
                                        fixed="the optimizer's update")
    weight_decay: Optional[float] = setting(float, "L2 weight decay added to the gradient.",
                                            domain=at_least(0, integer=False), fixed="the loss's gradient")
    weight_decay_scope: Optional[str] = setting(str, "Decay all trainable weights or conv kernels only.",
                                                choices=WEIGHT_DECAY_SCOPES, fixed="the loss's gradient")
    stage2_weight_decay: Optional[float] = setting(
        float, "Weight decay of stage 2 (default: --weight_decay).", domain=at_least(0, integer=False),
        nullable=True, fixed="stage 2's gradient")
    restriction_lambda: Optional[float] = setting(
        float, "λ of the restriction mask; 0 turns restriction off.", fallback=0.15,
        domain=at_least(0, integer=False), fixed="what restriction erases: the loss")
    normalization: Optional[str] = setting(str, "Attention normalization of the mask.", fallback="height",
                                           choices=NORMALIZATIONS, fixed="the restriction mask: the loss")
    teacher: Optional[str] = setting(
        str, "Keras Applications name or saved Keras model path; '' = no distillation.", fallback="",
        fixed="the distillation loss")
    # How to run it: each has its own default, not the recipe's.
    init_weights: Optional[str] = setting(
        str, "Stage-1 weights for --stage 2 (default: the model directory's).", run_option=True,
        path=_WEIGHTS, nullable=True, fixed="stage 2's starting weights")
    strategy: str = setting(str, "tf.distribute strategy.", run_option=True, default="default",
                            choices=STRATEGIES,
                            fixed="replicas split the batch and sum the gradients in another order: other numbers")
    mixed_precision: bool = setting(
        bool, "float16 (bfloat16 on TPU) compute, for accelerators.", run_option=True, default=False,
        fixed="float16 compute: other numbers, and loss-scale state in the checkpoint")
    jit_compile: bool = setting(bool, "Compile the training step with XLA.", run_option=True, default=False,
                                fixed="XLA fuses and rounds differently: other numbers")
    restriction_shortcut: bool = setting(
        bool, "When the mask keeps every pixel of a replica's batch, skip the second pass (its result is the "
        "first's; batch-norm moving statistics updated in closed form).", run_option=True, default=True,
        fixed="equals the second pass up to rounding, not bit for bit (tests/test_ir2_step.py)")
    model_dir: str = setting(str, "Where the run's config, checkpoints, weights and logs go.", run_option=True,
                             default="runs/demo", stored=False,
                             path=PathArg(DIR, must_exist=False, what="a folder (created if missing)"),
                             free="the run's folder itself")
    overwrite: bool = setting(bool, "Delete a different run found in --model_dir and start afresh.",
                              run_option=True, default=False, stored=False,
                              free="what to do with a different run, not how to train this one")
    checkpoint_every: int = setting(int, "Save a checkpoint every N steps (and at every epoch's end).",
                                    run_option=True, default=500, domain=at_least(1), stored=False,
                                    free="how often progress is saved; the weights do not depend on it")
    data_service: str = setting(
        str, "tf.data service dispatcher that makes the training batches on other machines (`python -m zoo "
        "data-service` starts one there, with its one worker); on a cluster, one per worker or one for all. "
        "Default: batches are made here.", run_option=True, default="", stored=False,
        addresses=Addresses("a tf.data service dispatcher"),
        free="where the training batches are made, not which: the same batches in the same order")
    tpu: str = setting(str, "TPU name or address for --strategy=tpu.", run_option=True, default="", stored=False,
                       free="which TPU, not how it computes")
    cluster_timeout: int = setting(int, "--strategy=multi_worker: seconds to wait for every worker at start-up.",
                                   run_option=True, default=300, domain=at_least(1), stored=False,
                                   free="how long workers wait for each other at start-up")
    verbose: int = setting(int, "Progress bars (1) or none (0).", run_option=True, default=1,
                           domain=one_of(0, 1, integer=True), stored=False, free="progress bars")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = field.metadata["setting"].check(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)

    def given(self) -> Dict[str, Any]:
        """The recipe settings set (not None) in this configuration."""
        return {n: getattr(self, n) for n in RECIPE_SETTINGS if getattr(self, n) is not None}

    def settings(self) -> Dict[str, Any]:
        """The run's recipe settings, the recipe filled in: what ``config.json``
        stores under ``training`` (``run.Run`` adds the stored run options)."""
        from ir2net_tf.runs import recipes

        given = self.given()
        name = recipes.recipe_name(self.recipe, given.get("dataset"), given.get("model"))
        given.pop("recipe", None)
        if given.get("steps_per_epoch") == 0:
            del given["steps_per_epoch"]  # the whole epoch, as a run without the setting
        return recipes.resolve(name, given)

    def resolved(self) -> "TrainConfig":
        """This configuration with every recipe setting filled in."""
        return dataclasses.replace(self, **self.settings())

    def run_options(self) -> Dict[str, Any]:
        """``run.Run``'s keyword arguments besides the settings."""
        return {n: getattr(self, n) for n in RUN_OPTIONS}


def _settings() -> Dict[str, Setting]:
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(TrainConfig)}


SETTINGS: Dict[str, Setting] = _settings()
RECIPE_SETTINGS = tuple(n for n, s in SETTINGS.items() if s.from_recipe)
RUN_OPTIONS = tuple(n for n, s in SETTINGS.items() if not s.from_recipe)
# What a recipe setting is when neither the recipe nor the caller sets it.
FALLBACKS = {n: SETTINGS[n].fallback for n in RECIPE_SETTINGS if n != "recipe"}


def check(settings: Dict[str, Any]) -> None:
    """Each value of a settings dict (a recipe's, a ``config.json``'s) against
    its field: a ValueError naming the flag at fault; None only where the
    field is nullable."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"Unknown training settings {unknown}; `python -m train --help` lists them.")
    for name, value in settings.items():
        spec = SETTINGS[name]
        if value is None and not spec.nullable and spec.from_recipe:
            raise ValueError(f"--{name} must be set; got None.")
        spec.check(name, value)


def markdown_table() -> str:
    """docs/training-settings.md's table, from the fields."""

    def domain(s: Setting) -> str:
        if s.choices:
            return " \\| ".join(f"`{c}`" for c in s.choices)
        if s.domain:
            return s.domain.describe()
        if s.path:
            return s.path.describe()
        if s.addresses:
            return s.addresses.describe()
        return "true \\| false" if s.type is bool else "text"

    def value(v) -> str:
        return "unset" if v is None else f"`{str(v).lower() if isinstance(v, bool) else v}`"

    rows = ["| flag | values | default | at resume | what |", "|---|---|---|---|---|"]
    for name, s in SETTINGS.items():
        default = ("recipe" + (f", else {value(s.fallback)}" if s.fallback is not None else "")
                   if s.from_recipe and name != "recipe" else value(s.fallback))
        if name == "recipe":
            default = "by `--dataset`, `--model`"
        rule = ("may change" if s.may_change else "fixed") + f": {s.reason}"
        rows.append(f"| `--{name}` | {domain(s)} | {default} | {rule} | {s.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
