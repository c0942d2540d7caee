"""The IR²Net model zoo: ``from ir2net_tf.zoo import IR2ResNet18``.

Every builder is keyword-only and follows larq-zoo's conventions
(``input_shape``, ``input_tensor``, ``weights``, ``include_top``,
``num_classes``) plus ``variant``, ``recovery``, ``binary_weights``,
``pad_values``, ``classifier_activation`` and, for the ImageNet models,
``padding`` ("pytorch" for weights imported by ``python -m zoo import-pytorch``). ``MODELS`` describes each one
for the command-line tools.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from ir2net_tf.models.any_backbone import add_recovery_head
from ir2net_tf.models.cifar import IR2ResNet18CIFAR, IR2ResNet20, IR2VGGSmall
from ir2net_tf.models.irnet import IRNetResNet18, IRNetResNet18CIFAR, IRNetResNet20, IRNetResNet34, IRNetVGGSmall
from ir2net_tf.models.common import FEATURES_LAYER, with_feature_map
from ir2net_tf.models.resnet_imagenet import IR2ResNet18, IR2ResNet34


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the tools need to know about a zoo model."""

    name: str
    builder: Callable
    dataset: str  # what the paper trained it on
    input_size: int
    variants: Tuple[Optional[str], ...]
    default_variant: Optional[str]
    # The paper's reported top-1 / top-5 (%) per variant; None where it has none.
    paper_accuracy: Dict[Optional[str], Tuple[float, Optional[float]]]
    recipe: Optional[str]  # training preset of SPEC's recipe table


_IMAGENET_VARIANTS = ("A", "B", "C", "D")
_CIFAR_VARIANTS = (None, "A", "B", "C", "D")

MODELS: Dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            "IR2ResNet18", IR2ResNet18, "imagenet2012", 224, _IMAGENET_VARIANTS, "A",
            {"A": (68.2, 88.0), "B": (67.0, 87.1), "C": (66.6, 87.0), "D": (63.8, 85.5)},
            "imagenet",
        ),
        ModelInfo("IR2ResNet34", IR2ResNet34, "imagenet2012", 224, _IMAGENET_VARIANTS, "A", {}, "imagenet"),
        ModelInfo("IR2ResNet20", IR2ResNet20, "cifar10", 32, _CIFAR_VARIANTS, None, {None: (87.2, None)}, "cifar10_resnet20"),
        ModelInfo(
            "IR2ResNet18CIFAR", IR2ResNet18CIFAR, "cifar10", 32, _CIFAR_VARIANTS, None, {None: (92.5, None)},
            "cifar10_resnet18",
        ),
        ModelInfo("IR2VGGSmall", IR2VGGSmall, "cifar10", 32, _CIFAR_VARIANTS, None, {None: (91.5, None)}, "cifar10_vggsmall"),
    )
}


# ---- IR-Net (docs/irnet.md): the models the IR²Net paper compares against.
# No variants (no recovery head). paper_accuracy holds the accuracies IR-Net's
# own release reports (not IR²Net's paper, not measured here); the catalog
# marks them as such (IRNET_MODELS). They train with --recipe irnet_cifar10 /
# irnet_imagenet.
IRNET_MODELS = ("IRNetResNet20", "IRNetResNet18CIFAR", "IRNetVGGSmall", "IRNetResNet18", "IRNetResNet34")
MODELS.update(
    {
        info.name: info
        for info in (
            ModelInfo("IRNetResNet20", IRNetResNet20, "cifar10", 32, (None,), None, {None: (86.5, None)}, "irnet_cifar10"),
            ModelInfo(
                "IRNetResNet18CIFAR", IRNetResNet18CIFAR, "cifar10", 32, (None,), None, {None: (91.5, None)}, "irnet_cifar10"
            ),
            ModelInfo("IRNetVGGSmall", IRNetVGGSmall, "cifar10", 32, (None,), None, {None: (90.4, None)}, "irnet_cifar10"),
            ModelInfo("IRNetResNet18", IRNetResNet18, "imagenet2012", 224, (None,), None, {None: (58.1, 80.0)}, "irnet_imagenet"),
            ModelInfo("IRNetResNet34", IRNetResNet34, "imagenet2012", 224, (None,), None, {None: (62.9, 84.1)}, "irnet_imagenet"),
        )
    }
)
# ---- end of IR-Net


def get_model_info(name: str) -> ModelInfo:
    """The ``ModelInfo`` of a zoo model, or a ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name]


def build(name: str, **kwargs):
    """Builds zoo model ``name`` with the builder's keyword arguments."""
    return get_model_info(name).builder(**kwargs)


__all__ = [
    "IR2ResNet18",
    "IR2ResNet34",
    "IR2ResNet20",
    "IR2ResNet18CIFAR",
    "IR2VGGSmall",
    "IRNetResNet20",
    "IRNetResNet18CIFAR",
    "IRNetVGGSmall",
    "IRNetResNet18",
    "IRNetResNet34",
    "IRNET_MODELS",
    "MODELS",
    "add_recovery_head",
    "ModelInfo",
    "FEATURES_LAYER",
    "build",
    "get_model_info",
    "with_feature_map",
]
