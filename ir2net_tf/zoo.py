"""The IR²Net model zoo: ``from ir2net_tf.zoo import IR2ResNet18``.

Every builder is keyword-only and follows larq-zoo's conventions
(``input_shape``, ``input_tensor``, ``weights``, ``include_top``,
``num_classes``) plus ``variant``, ``recovery``, ``binary_weights``,
``pad_values``, ``classifier_activation``, ``weight_clip`` (Larq's latent
weight clipping; off by default, as in the reference) and ``padding``
("pytorch": PyTorch's symmetric padding, as the authors' code and weights
imported by ``python -m zoo import-pytorch``). ``IR2QuickNet``, ``IR2BiRealNet``
and the rest of ``LARQ_ZOO_MODELS`` put the recovery head on larq-zoo's
networks (``weights="imagenet"``: larq-zoo's ImageNet weights). ``MODELS`` maps each name to
its ``ModelSpec``, the one description of the model that every tool reads
(``ir2net_tf.models.spec``).
"""

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from ir2net_tf.models import cifar, irnet, larq_zoo_backbones, resnet_imagenet  # noqa: F401  (registers the models)
from ir2net_tf.models.any_backbone import add_recovery_head
from ir2net_tf.models.cifar import IR2ResNet18CIFAR, IR2ResNet20, IR2VGGSmall
from ir2net_tf.models.common import FEATURES_LAYER, with_feature_map
from ir2net_tf.models.irnet import IRNetResNet18, IRNetResNet18CIFAR, IRNetResNet20, IRNetResNet34, IRNetVGGSmall
from ir2net_tf.models.resnet_imagenet import IR2ResNet18, IR2ResNet34
from ir2net_tf.models.spec import BUILDERS, MODELS, ModelSpec, Variant, build, get_spec, model_variants
from ir2net_tf.models.larq_zoo_backbones import (  # IR² on every larq-zoo network (docs/architectures.md)
    IR2BiRealNet,
    IR2BinaryAlexNet,
    IR2BinaryDenseNet28,
    IR2BinaryDenseNet37,
    IR2BinaryDenseNet37Dilated,
    IR2BinaryDenseNet45,
    IR2BinaryResNetE18,
    IR2DoReFaNet,
    IR2MeliusNet22,
    IR2RealToBinaryNet,
    IR2XNORNet,
    IR2QuickNet,
    IR2QuickNetSmall,
    IR2QuickNetLarge,
)

LARQ_ZOO_MODELS = larq_zoo_backbones.BUILDER_NAMES

# The IR-Net models the paper compares against (docs/irnet.md).
IRNET_MODELS = tuple(name for name, spec in MODELS.items() if spec.method == "irnet")

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
    "LARQ_ZOO_MODELS",
    "IR2BiRealNet",
    "IR2BinaryAlexNet",
    "IR2BinaryDenseNet28",
    "IR2BinaryDenseNet37",
    "IR2BinaryDenseNet37Dilated",
    "IR2BinaryDenseNet45",
    "IR2BinaryResNetE18",
    "IR2DoReFaNet",
    "IR2MeliusNet22",
    "IR2RealToBinaryNet",
    "IR2XNORNet",
    "IR2QuickNet",
    "IR2QuickNetSmall",
    "IR2QuickNetLarge",
    "BUILDERS",
    "MODELS",
    "ModelSpec",
    "Variant",
    "add_recovery_head",
    "FEATURES_LAYER",
    "build",
    "get_spec",
    "model_variants",
    "with_feature_map",
]
