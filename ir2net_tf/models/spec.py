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
    from ir2net_tf.recovery import FusionHead

    zoo.get_spec("IR2ResNet20").variants["E"] = Variant(FusionHead("compact", ratio=8))
    model = zoo.IR2ResNet20(variant="E")
"""

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

from ir2net_tf.recovery import FusionHead

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
            f"(default {self.default_variant!r}), or pass an ir2net_tf.recovery.FusionHead to the builder."
        )

    def variant_names(self) -> List[str]:
        return [name for name in self.variants if name is not None]


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
            Libra-PB, ``ir2net_tf.binarization``); default ``"{binarizer}"``.

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
                       "            or an ``ir2net_tf.recovery.FusionHead``.")
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
