"""One description per zoo model: the single place its facts live.

A ``ModelSpec`` holds everything the project knows about a model: how to
build its backbone, its default input size and total stride, its variants
(fusion heads) with the paper's accuracies, its activation, its classifier,
the options it supports and its training recipe. The builders
(``ir2net_tf.zoo``), the catalog (``python -m zoo list``), the benchmark, the
commands' choices and the PyTorch import all read it, so a variant added to
``spec.variants`` is available everywhere at once::

    from ir2net_tf import zoo
    from ir2net_tf.models.spec import Variant
    from ir2net_tf.nn.recovery import FusionHead

    zoo.get_spec("IR2ResNet20").variants["E"] = Variant(FusionHead("compact", ratio=8))
    model = zoo.IR2ResNet20(variant="E")
"""

import dataclasses
import numbers
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from ir2net_tf.nn.layers import BINARIZERS, PAD_VALUES
from ir2net_tf.nn.recovery import FusionHead

# What a user may write for "the model's default head" (the paper's head of a
# CIFAR model, variant A of an ImageNet model).
DEFAULT_VARIANT_WORDS = ("", "default", "paper", "none")


@dataclasses.dataclass(frozen=True)
class Variant:
    """A fusion head of a model, with what is known about it.

    Args:
        head: the fusion head; None for a model without a recovery head (the
            IR-Net models: their one "variant", named None).
        paper_top1: top-1 accuracy (%) reported by the paper, if any.
        paper_top5: top-5 accuracy (%) reported by the paper, if any.
        parameters: trainable parameters of the reference implementation.
        source: who reported the accuracy (for the catalog).
    """

    head: Optional[FusionHead]
    paper_top1: Optional[float] = None
    paper_top5: Optional[float] = None
    parameters: Optional[int] = None
    source: str = "IR²Net paper"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything about one zoo model.

    Args:
        name: the builder's name, e.g. ``"IR2ResNet18"``.
        summary: one line: what the model is.
        architecture: a paragraph on the recovery head and classifier.
        backbone: ``backbone(inputs, conv_args)`` builds the stem and stages
            and returns the feature maps ``[f0, f1, …, F]`` (taps, F last);
            ``conv_args`` are the binary-convolution options (``CONV_OPTIONS``).
        dataset: what the paper trained it on (a tensorflow-datasets name).
        input_size: default input height and width.
        stride: total stride: input sizes must be multiples of it.
        num_classes: default classes.
        activation: ``"prelu"`` (ImageNet models) or ``"hardtanh"`` (CIFAR).
        variants: name → ``Variant``; a dict so that variants can be added.
        default_variant: the variant built when none is given.
        keras_names: the Keras model's name with and without recovery.
        recipe: the ``python -m train`` recipe that reproduces the paper.
        binary_weights: binary kernel weights (the same for every variant).
        depths: blocks per stage, where the backbone is a ResNet.
        paddings: the ``padding`` settings the model supports.
        flatten: Flatten instead of global average pooling before the
            classifier (VGG-Small).
        final_batch_norm: BatchNorm before the classifier's Dense layer:
            None (with a recovery head only), True (always) or False (never).
        references: (title, URL) pairs for the docstring.
        method: ``"ir2net"`` or ``"irnet"`` (the IR-Net models the paper
            compares against: no recovery head, no information restriction).
        conv_options: the values each binary-convolution option
            (``CONV_OPTIONS``) may take, where the model restricts them beyond
            the project's own domains (a larq-zoo network keeps larq-zoo's
            quantizers and padding: one value each).
        pretrained: who serves ``weights="imagenet"`` (``"larq-zoo"``), or
            None: our models have no downloadable weights.
        min_size: the smallest input height/width (the final map larger
            than 1×1); default ``stride``.
        training_defaults: training flags this model sets when the command
            line does not (``ir2net_tf.runs.recipes.resolve``).
        taps_doc: which layers the recovery head taps, for the docs.
        baseline: what is reported for the bare backbone (``recovery=False``),
            e.g. larq-zoo's accuracy of its original network.
        deploy_note: for a model whose LCE export is not fully binary, what
            runs as binary kernels and what in float, in a deployer's words
            (the export's census, ``python -m zoo list`` and
            docs/verification.md print it); None when every binary
            convolution becomes an ``LceBconv2d``.
    """

    name: str
    summary: str
    architecture: str
    backbone: Callable
    dataset: str
    input_size: int
    stride: int
    num_classes: int
    activation: str
    variants: Dict[str, Variant]
    default_variant: Optional[str]
    keras_names: Tuple[str, str]
    recipe: Optional[str] = None
    binary_weights: Optional[int] = None
    depths: Optional[Tuple[int, ...]] = None
    paddings: Tuple[str, ...] = ("same",)
    flatten: bool = False
    final_batch_norm: Optional[bool] = None
    references: Tuple[Tuple[str, str], ...] = (
        ("IR²Net: Information Restriction and Information Recovery for Accurate Binary Neural Networks",
         "https://arxiv.org/abs/2210.02637"),
    )
    method: str = "ir2net"
    conv_options: Dict[str, Tuple] = dataclasses.field(default_factory=dict)
    pretrained: Optional[str] = None
    min_size: Optional[int] = None
    training_defaults: Dict[str, Any] = dataclasses.field(default_factory=dict)
    taps_doc: Optional[str] = None
    baseline: Optional[Variant] = None
    deploy_note: Optional[str] = None

    def option_values(self, option: str) -> Tuple:
        """The values binary-convolution option ``option`` may take."""
        if option in self.conv_options:
            return self.conv_options[option]
        return {"binary_weights": (True, False), "pad_values": PAD_VALUES, "padding": self.paddings,
                "weight_clip": (False, True), "binarizer": BINARIZERS}[option]

    def check_arguments(self, arguments: dict) -> None:
        """Validates a builder's arguments, types as well as values: the one
        place that knows what this model accepts (``build_zoo_model`` calls
        it before building anything). Raises a ValueError naming the
        argument and what it takes."""
        check_builder_arguments(self, arguments)

    @property
    def has_recovery(self) -> bool:
        """Whether the model has a recovery head (and so variants)."""
        return any(v.head is not None for v in self.variants.values())

    def variant(self, name) -> Variant:
        """The ``Variant`` called ``name`` (see ``parse_variant``)."""
        return self.variants[self.parse_variant(name)]

    def parse_variant(self, name) -> Optional[str]:
        """The canonical name of variant ``name``: letters in any case; None,
        "" or "default"/"paper"/"none" for the default. A ValueError lists
        the choices for anything else."""
        if name is None or (isinstance(name, str) and name.strip().lower() in DEFAULT_VARIANT_WORDS):
            return self.default_variant
        if not self.has_recovery:
            raise ValueError(f"{self.name} has no recovery head and so no variants; leave the variant unset.")
        if isinstance(name, str):
            for known in self.variants:
                if known.lower() == name.strip().lower():
                    return known
        raise ValueError(
            f"Unknown variant {name!r} for {self.name}; choose one of {self.variant_names()} "
            f"(default {self.default_variant!r}), or pass an ir2net_tf.nn.recovery.FusionHead to the builder."
        )

    def variant_names(self) -> List[str]:
        return [name for name in self.variants if name is not None]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's bool too


def _check_input_shape(spec: ModelSpec, input_shape, include_top: bool, recovery: bool, weights) -> None:
    if input_shape is None:
        return
    example = f"e.g. input_shape=({spec.input_size}, {spec.input_size}, 3)"
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r} ({example}).")
    *sizes, channels = tuple(input_shape)
    for value in (*sizes, channels):
        if value is not None and (not _is_int(value) or value < 1):
            raise ValueError(
                f"input_shape must hold positive integers (None for a dynamic height or width); got "
                f"{value!r} in {tuple(input_shape)!r} ({example})."
            )
    if channels is None:
        raise ValueError(f"input_shape needs a channel count; got {tuple(input_shape)!r} ({example}).")
    if weights == "imagenet" and channels != 3:
        raise ValueError(f"weights='imagenet' takes (height, width, 3) RGB images; got input_shape "
                         f"{tuple(input_shape)!r}. Other channel counts need weights=None.")
    if None in sizes:
        if include_top and spec.flatten:
            raise ValueError(
                f"{spec.name}'s classifier flattens the final map, so it needs a fixed height and width "
                f"({example}); include_top=False takes any size."
            )
        return
    smallest = spec.min_size or spec.stride
    for size in sizes:
        if recovery and (size < smallest or size % spec.stride):
            raise ValueError(
                f"{spec.name} needs a height and width that are multiples of {spec.stride} (at least "
                f"{smallest}), so that its recovery taps pool evenly; got {tuple(sizes)} ({example})."
            )
        if size < smallest:
            raise ValueError(f"{spec.name} needs a height and width of at least {smallest}; got "
                             f"{tuple(sizes)} ({example}).")


def check_builder_arguments(spec: ModelSpec, arguments: dict) -> None:
    """``ModelSpec.check_arguments``: every builder argument, by rule."""
    for name in ("include_top", "recovery"):
        if name in arguments and not _is_bool(arguments[name]):
            raise ValueError(f"{name} must be True or False; got {arguments[name]!r}.")
    weights = arguments.get("weights")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be None (random initialization) or the path to a weights file; "
                         f"got {weights!r}.")
    if weights is not None and str(weights) == "imagenet" and not os.path.exists(weights):
        if spec.pretrained is None:
            raise ValueError(
                "weights file 'imagenet' does not exist. There are no downloadable pretrained weights: train "
                "with `python -m train` and pass the saved weights' path."
            )
    elif weights is not None and not os.path.exists(weights):
        raise ValueError(f"weights file {str(weights)!r} does not exist.")
    include_top = arguments.get("include_top", True)
    num_classes = arguments.get("num_classes")
    if num_classes is not None:
        if not include_top:
            raise ValueError("num_classes is only used with include_top=True; drop it or set include_top=True.")
        if not _is_int(num_classes) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}.")
    activation = arguments.get("classifier_activation")
    if activation is not None and not isinstance(activation, str):
        raise ValueError(f"classifier_activation must be None (logits) or an activation's name such as "
                         f"'softmax'; got {activation!r}.")
    for option in ("binary_weights", "pad_values", "padding", "weight_clip", "binarizer"):
        if option not in arguments:
            continue
        value, allowed = arguments[option], spec.option_values(option)
        typed = {"binary_weights": _is_bool, "weight_clip": _is_bool,
                 "pad_values": lambda v: isinstance(v, numbers.Real) and not _is_bool(v),
                 "padding": lambda v: isinstance(v, str), "binarizer": lambda v: isinstance(v, str)}[option]
        if option == "padding" and value not in allowed and typed(value):
            raise ValueError(f"{spec.name} supports padding {' or '.join(map(repr, allowed))}; got {value!r}.")
        if not typed(value) or value not in allowed:
            why = f" ({spec.name}'s binary convolutions are {spec.pretrained}'s own)" if spec.pretrained else ""
            raise ValueError(f"{option} must be one of {allowed}{why}; got {value!r}.")
    _check_input_shape(spec, arguments.get("input_shape"), include_top,
                       bool(arguments.get("recovery")) and spec.has_recovery, weights)


# The registry every tool reads: name → ModelSpec, in registration order,
# and name → the public builder function.
MODELS: Dict[str, ModelSpec] = {}
BUILDERS: Dict[str, Callable] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds ``spec`` to ``MODELS`` (a name can be registered once)."""
    if spec.name in MODELS:
        raise ValueError(f"A model named {spec.name!r} is already registered.")
    if spec.default_variant is not None and spec.default_variant not in spec.variants:
        raise ValueError(f"{spec.name}: default variant {spec.default_variant!r} is not among its variants.")
    MODELS[spec.name] = spec
    return spec


def builder(spec: ModelSpec) -> Callable:
    """Decorator of a model's public builder: registers it for ``spec`` and
    writes its docstring from ``spec``."""

    def decorate(function):
        function.__doc__ = docstring(spec)
        BUILDERS[spec.name] = function
        return function

    return decorate


def build(name: str, **kwargs):
    """Builds zoo model ``name`` with its builder's keyword arguments."""
    get_spec(name)  # a clear error for unknown names
    return BUILDERS[name](**kwargs)


def get_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` of zoo model ``name``; a ValueError lists the choices."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name]


def model_variants() -> List[Tuple[str, Optional[str]]]:
    """(model name, variant name) for every registered model and variant
    (None for a model without variants)."""
    return [(spec.name, variant) for spec in MODELS.values() for variant in spec.variants]


_ARGUMENTS = """
    Args:
        input_shape: ``(height, width, 3)``; height and width multiples of
            {stride}, the model's total stride (default ``({size}, {size}, 3)``).
        input_tensor: optional Keras tensor to use as the image input.
        weights: ``None`` (random initialization) or the path to a weights file
            saved from the same architecture (there are no downloadable weights).
        include_top: whether to add the classifier. Without it the model
            returns the fused map (or F when ``recovery=False``).
        num_classes: classes of the classifier (default {classes}); only with
            ``include_top=True``.
        variant: {variant_doc}
        recovery: {recovery_doc}
        binary_weights: ``False`` gives step 1 of the two-step recipe (real
            weights, binary activations); its weights load into the ``True``
            model unchanged.
        pad_values: value the binarized input of each binary convolution is
            padded with: 0.0 (the reference, default) or 1.0 (LCE one-padding).
        classifier_activation: ``"softmax"`` (default, class probabilities, as
            in ``keras.applications``) or ``None`` (logits).{padding}
        weight_clip: ``False`` (default, the reference's dynamics): latent
            binary weights are never clipped. ``True`` adds Larq's
            ``weight_clip`` constraint (clip to [−1, 1] after every update).
        binarizer: the binary convolutions' quantizers: ``"bireal"``
            (IR²Net's approx_sign / ste_sign) or ``"irnet"`` (IR-Net's EDE and
            Libra-PB, ``ir2net_tf.nn.binarization``); default ``"{binarizer}"``.

    Input:
        Images on a 0–1 scale normalized with the ImageNet mean (0.485, 0.456,
        0.406) and std (0.229, 0.224, 0.225) (``ir2net_tf.data.normalize``).

    Returns:
        A functional ``tf.keras.Model``. Its layer ``"final_features"`` is F,
        the final backbone map that information restriction reads
        (``ir2net_tf.zoo.with_feature_map`` returns ``[output, F]``).
"""

_PYTORCH_PADDING = """
        padding: ``"same"`` (default): TensorFlow's padding. ``"pytorch"``:
            PyTorch's symmetric padding where "same" pads asymmetrically (the
            strided convolutions and pools), as the authors' code does;
            weights imported from their PyTorch checkpoints (``python -m zoo
            import-pytorch``) need it to give the reference's outputs. Same
            variables: weights load into either setting; still one
            ``LceBconv2d`` per binary convolution when exported."""


def _percent(value) -> str:
    return "–" if value is None else f"{value} %"


def docstring(spec: ModelSpec) -> str:
    """The builder's docstring, written from ``spec``."""
    lines = [f"Instantiates {spec.name}: {spec.summary}.", "", f"    {spec.architecture}", ""]
    if not spec.has_recovery:
        (only,) = spec.variants.values()
        lines += [
            f"    | top-1 on {spec.dataset} ({only.source}, reported) | top-5 | trainable parameters |",
            "    | ----- | ----- | -------------------- |",
            f"    | {_percent(only.paper_top1)} | {_percent(only.paper_top5)} | {only.parameters:,} |",
            "",
        ]
    else:
        lines += [
            f"    Variants (accuracy on {spec.dataset} as reported; parameters of this code):",
            "",
            "    | variant | fusion head | top-1 | top-5 | trainable parameters |",
            "    | ------- | ----------- | ----- | ----- | -------------------- |",
        ]
        for name, variant in spec.variants.items():
            parameters = f"{variant.parameters:,}" if variant.parameters else "–"
            lines.append(
                f"    | {name} | {variant.head.describe()} | {_percent(variant.paper_top1)} "
                f"| {_percent(variant.paper_top5)} | {parameters} |"
            )
        lines.append("")
    if spec.binary_weights:
        lines += [f"    {spec.binary_weights:,} binary kernel weights.", ""]
    if spec.has_recovery:
        names = ", ".join(f'``"{v}"``' for v in spec.variant_names())
        variant_doc = (f"the fusion head: {names} (any case; ``None`` = ``\"{spec.default_variant}\"``),\n"
                       "            or an ``ir2net_tf.nn.recovery.FusionHead``.")
        recovery_doc = ("``False`` builds the bare backbone as the ablation baseline:\n"
                        "            F → pool → Dense, no recovery head and no extra BatchNorm.")
    else:
        variant_doc = "only ``None``: the model has no recovery head."
        recovery_doc = ("only ``False``; for IR-Net's binarization with a recovery head, build an\n"
                        "            IR² model with ``binarizer=\"irnet\"``.")
    text = "\n".join(lines) + _ARGUMENTS.format(
        stride=spec.stride, size=spec.input_size, classes=spec.num_classes, variant_doc=variant_doc,
        recovery_doc=recovery_doc, padding=_PYTORCH_PADDING if "pytorch" in spec.paddings else "",
        binarizer="irnet" if spec.method == "irnet" else "bireal",
    )
    text += "\n    References:\n" + "".join(f"        - [{title}]({url})\n" for title, url in spec.references)
    return text
