"""IR² on every larq-zoo 2.4 network: ``IR2QuickNet``, ``IR2BiRealNet``, …
(docs/architectures.md, "larq-zoo backbones").

Each larq-zoo network, built by larq-zoo itself with ``include_top=False``, is
the backbone of a zoo model described by a ``ModelSpec`` like our own: the
recovery head taps the layers listed in ``NETWORKS`` (the last layer of each
feature-map size, found once at 224×224 and kept as layer positions so that
every input size, dynamic ones included, taps the same layers), fuses them
with F to F's width, and the classifier is ours (global pool → [BatchNorm]
→ Dense). ``recovery=False`` is the larq-zoo network with our classifier:
the baseline its IR² variants are compared with.

``weights="imagenet"`` goes through larq-zoo's own download and cache
(``~/.keras/larq/models/<model>/<file>``, its backbone-only "notop" file); the
recovery head and the classifier start new. Offline, a one-line error says
where the file is expected. The binary convolutions stay larq-zoo's own
(quantizers, padding, kernel constraints): the builders accept only those
settings (``ModelSpec.conv_options``).
"""

import contextlib
import dataclasses
import importlib
import os
import warnings
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from ir2net_tf.models.common import build_zoo_model
from ir2net_tf.models.spec import ModelSpec, Variant, builder, register
from ir2net_tf.nn.recovery import VARIANTS


@dataclasses.dataclass(frozen=True)
class Network:
    """One larq-zoo network, as data.

    Attributes:
        name: larq-zoo's builder, e.g. ``"QuickNet"``.
        module: ``"literature"`` or ``"sota"``.
        top1, top5: ImageNet accuracy (%) larq-zoo reports for it.
        taps: positions in the ``include_top=False`` model's ``layers`` of the
            recovery taps f0, f1, … at 224×224: the last layer of each map
            size that is a multiple of F's (the stem and stage outputs); for
            the AlexNet-style networks, whose sizes are not, of each size at
            least twice F's. Positions, not names: larq-zoo's layer names
            depend on what the Keras session built before.
        final: position of F: the larq-zoo model's output, or for XNORNet the
            last map larger than 1×1 (its 1×1 "fully connected" convolutions
            after it are dropped).
        taps_doc: the taps in words, for the docs.
        stride: input sizes must be multiples of it (the taps pool evenly).
        min_size: the smallest input whose F is larger than 1×1.
        pad_values: what larq-zoo pads the binary convolutions' inputs with.
        deploy_note: ``ModelSpec.deploy_note``: what its LCE export does not
            run as binary kernels.
    """

    name: str
    module: str
    top1: float
    top5: float
    taps: Tuple[int, ...]
    final: int
    taps_doc: str
    stride: int = 32
    min_size: int = 64
    pad_values: float = 0.0
    deploy_note: Optional[str] = None


_RESNET_TAPS = "stem (112²), outputs of stages 1–3 (56², 28², 14²)"
_ALEXNET_TAPS = "the first, second and fifth convolutions (56², 27², 13²; F is 6², pooled with trimmed windows)"
_DOREFA_TAPS = "after the first, second and fourth convolutions (54², 27², 14²; F is 6², trimmed windows)"
# Measured on the export at 224 (docs/verification.md).
_DOREFA_DEPLOY = ("its 4 quantized convolutions take 2-bit activations (DoReFa), which LCE has no kernel for: "
                  "the export has 0 LceBconv2d and runs all 6 convolutions as float32 CONV_2D, the 2-bit "
                  "activation quantization as float ops (MINIMUM, RELU, MUL, ROUND); only the kernels' "
                  "values are binary. Deploy it as a float network (or use a 1-bit larq-zoo network)")
_XNORNET_TAPS = ("the stem and the second and fourth convolutions (56², 27², 13²; F is 6², trimmed windows); "
                 "its smallest input is 224: larq-zoo builds its fully connected layers as 6×6 convolutions")
_MELIUS_TAPS = "stem (112²), the transitions of sections 1–3 (56², 28², 14²)"
_QUICKNET_TAPS = "stem (112²), the ReLU before each transition (56², 28², 14²)"
_DENSENET_TAPS = "stem (112²), outputs of the first three dense sections' transitions (56², 28², 14²)"

NETWORKS = (
    Network("BiRealNet", "literature", 57.47, 79.84, (2, 15, 30, 45), 60, _RESNET_TAPS),
    Network("BinaryAlexNet", "literature", 36.30, 61.53, (1, 4, 11), 13, _ALEXNET_TAPS, stride=1, min_size=89),
    Network("BinaryDenseNet28", "literature", 60.91, 82.83, (3, 23, 45, 67), 87, _DENSENET_TAPS),
    Network("BinaryDenseNet37", "literature", 62.89, 84.19, (3, 23, 51, 91), 114, _DENSENET_TAPS),
    Network("BinaryDenseNet37Dilated", "literature", 64.34, 85.15, (3, 23), 112, "stem (112²), first section (56²); F is 28²",
            stride=8, min_size=56),  # below 50 px larq-zoo builds a CIFAR stem: other layer positions
    Network("BinaryDenseNet45", "literature", 64.59, 85.21, (3, 23, 63, 109), 138, _DENSENET_TAPS),
    Network("BinaryResNetE18", "literature", 58.32, 80.79, (3, 17, 32, 47), 63, _RESNET_TAPS),
    Network("DoReFaNet", "literature", 53.39, 76.50, (3, 6, 11), 12, _DOREFA_TAPS, stride=1, min_size=80,
            deploy_note=_DOREFA_DEPLOY),
    Network("MeliusNet22", "literature", 62.4, 83.9, (23, 49, 83, 111), 140, _MELIUS_TAPS),
    Network("RealToBinaryNet", "literature", 65.01, 85.72, (3, 47, 92, 137), 181, _RESNET_TAPS),
    Network("XNORNet", "literature", 44.96, 69.18, (3, 6, 13), 15, _XNORNET_TAPS, stride=1, min_size=224),
    Network("QuickNet", "sota", 63.3, 84.6, (3, 20, 37, 54), 70, _QUICKNET_TAPS, pad_values=1.0),
    Network("QuickNetSmall", "sota", 59.4, 81.8, (3, 20, 37, 54), 70, _QUICKNET_TAPS, pad_values=1.0),
    Network("QuickNetLarge", "sota", 66.9, 87.0, (3, 26, 55, 96), 118, _QUICKNET_TAPS, pad_values=1.0),
)


def larq_zoo_cache_path(model: str, file: str, cache_dir: Optional[str] = None) -> str:
    """Where larq-zoo's download (``tf.keras.utils.get_file``) caches ``file``."""
    root = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(root, "larq", "models", model, file)


@contextlib.contextmanager
def _offline_error():
    """Turns a failed larq-zoo download into one line naming the cache file
    it looked for (a user without network access can place it there)."""
    from larq_zoo.core import utils

    download, wanted = utils.download_pretrained_model, []

    def recording(model, version, file, file_hash, cache_dir=None):
        wanted.append((model, version, file, cache_dir))
        return download(model=model, version=version, file=file, file_hash=file_hash, cache_dir=cache_dir)

    utils.download_pretrained_model = recording
    try:
        yield
    except Exception as error:  # get_file raises a bare Exception for a failed fetch
        if not wanted:
            raise
        model, version, file, cache_dir = wanted[-1]
        raise ValueError(
            f"Cannot download larq-zoo's ImageNet weights ({type(error).__name__}: {str(error)[:120]}); place "
            f"{file} (https://github.com/larq/zoo/releases/download/{model}-{version}/{file}) at "
            f"{larq_zoo_cache_path(model, file, cache_dir)} and build again."
        ) from None
    finally:
        utils.download_pretrained_model = download


def _ignore_initializer_warning() -> None:
    """larq-zoo's blur pool (QuickNet's stem and transitions) gives its
    DepthwiseConv2D a plain function as initializer, so tf-keras warns at
    every get_config (a checkpoint or weights save, a clone, LCE's
    conversion) that this "may lead to improper serialization". The
    initializer only fills a fixed kernel that every weights file stores:
    nothing is lost. Installed when a larq-zoo backbone is first built (the
    saves come later, anywhere), not when this module is imported."""
    warnings.filterwarnings("ignore", category=UserWarning,
                            message=r"The `keras\.initializers\.serialize\(\)` API should only be used")


@dataclasses.dataclass(frozen=True)
class LarqZooBackbone:
    """A ``ModelSpec.backbone``: larq-zoo's network as a nested Keras model
    whose outputs are the taps and F."""

    network: Network

    def larq_zoo_model(self, input_shape, weights=None) -> tf.keras.Model:
        """larq-zoo's own ``include_top=False`` model (its weights loaded by
        larq-zoo for ``weights="imagenet"``); MeliusNet22 and RealToBinaryNet
        through ``larq_zoo_factories``, without Lambda layers."""
        from ir2net_tf.models import larq_zoo_factories

        _ignore_initializer_warning()
        with warnings.catch_warnings(), (_offline_error() if weights else contextlib.nullcontext()):
            # Keras warns about channel counts other than 1 and 3; we take any.
            warnings.simplefilter("ignore", UserWarning)
            if self.network.name in larq_zoo_factories.FACTORIES:  # (saved models load back)
                return larq_zoo_factories.build(self.network.name, tuple(input_shape), weights)
            build = getattr(importlib.import_module(f"larq_zoo.{self.network.module}"), self.network.name)
            return build(input_shape=tuple(input_shape), weights=weights, include_top=False)

    def __call__(self, inputs, conv_args, weights=None):
        model = self.larq_zoo_model(inputs.shape[1:], weights)
        outputs = [model.layers[i].output for i in (*self.network.taps, self.network.final or len(model.layers) - 1)]
        extractor = tf.keras.Model(model.inputs, outputs, name=model.name)
        features = extractor(inputs)
        return list(features) if isinstance(features, (list, tuple)) else [features]


def _spec(network: Network) -> ModelSpec:
    name = f"IR2{network.name}"
    conv_options = {"binary_weights": (True,), "pad_values": (network.pad_values,), "padding": ("same",),
                    "weight_clip": (False,), "binarizer": ("larq-zoo",)}
    return register(ModelSpec(
        name=name,
        summary=f"larq-zoo's {network.name} with information recovery",
        architecture=(
            f"larq-zoo's {network.name} (include_top=False, its own binary convolutions). Taps: "
            f"{network.taps_doc or 'none'};\n    pooled to F's size and concatenated with F → fusion head "
            "→ F's width → global average pool → BatchNorm → Dense."
        ),
        backbone=LarqZooBackbone(network),
        dataset="imagenet2012", input_size=224, stride=network.stride, num_classes=1000, activation="prelu",
        variants={letter: Variant(head) for letter, head in VARIANTS.items()},
        default_variant="A", keras_names=(f"ir2_{network.name.lower()}", network.name.lower()),
        recipe="larq_zoo_finetune",
        references=(ModelSpec.references[0], (f"larq-zoo {network.name}", "https://docs.larq.dev/zoo/")),
        conv_options=conv_options, pretrained="larq-zoo", min_size=network.min_size,
        training_defaults={"pad_values": network.pad_values},
        taps_doc=network.taps_doc,
        baseline=Variant(None, network.top1, network.top5, source="larq-zoo"),
        deploy_note=network.deploy_note,
    ))


SPECS = {network.name: _spec(network) for network in NETWORKS}


# The public builders, written out (IDEs, help() and static analysis see
# them); each accepts only its larq-zoo network's own settings
# (ModelSpec.conv_options), and tests/test_larq_zoo_backbones.py checks there
# is one per network.


@builder(SPECS["BiRealNet"])
def IR2BiRealNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BiRealNet"], **locals())


@builder(SPECS["BinaryAlexNet"])
def IR2BinaryAlexNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryAlexNet"], **locals())


@builder(SPECS["BinaryDenseNet28"])
def IR2BinaryDenseNet28(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryDenseNet28"], **locals())


@builder(SPECS["BinaryDenseNet37"])
def IR2BinaryDenseNet37(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryDenseNet37"], **locals())


@builder(SPECS["BinaryDenseNet37Dilated"])
def IR2BinaryDenseNet37Dilated(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryDenseNet37Dilated"], **locals())


@builder(SPECS["BinaryDenseNet45"])
def IR2BinaryDenseNet45(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryDenseNet45"], **locals())


@builder(SPECS["BinaryResNetE18"])
def IR2BinaryResNetE18(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["BinaryResNetE18"], **locals())


@builder(SPECS["DoReFaNet"])
def IR2DoReFaNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["DoReFaNet"], **locals())


@builder(SPECS["MeliusNet22"])
def IR2MeliusNet22(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["MeliusNet22"], **locals())


@builder(SPECS["RealToBinaryNet"])
def IR2RealToBinaryNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["RealToBinaryNet"], **locals())


@builder(SPECS["XNORNet"])
def IR2XNORNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 0.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["XNORNet"], **locals())


@builder(SPECS["QuickNet"])
def IR2QuickNet(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 1.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["QuickNet"], **locals())


@builder(SPECS["QuickNetSmall"])
def IR2QuickNetSmall(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 1.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["QuickNetSmall"], **locals())


@builder(SPECS["QuickNetLarge"])
def IR2QuickNetLarge(
    *, input_shape: Optional[Sequence[Optional[int]]] = None, input_tensor=None, weights: Optional[str] = None,
    include_top: bool = True, num_classes: Optional[int] = None, variant="A", recovery: bool = True,
    binary_weights: bool = True, pad_values: float = 1.0, classifier_activation: Optional[str] = "softmax",
    padding: str = "same", weight_clip: bool = False, binarizer: str = "larq-zoo",
) -> tf.keras.Model:
    return build_zoo_model(SPECS["QuickNetLarge"], **locals())


BUILDER_NAMES = tuple(spec.name for spec in SPECS.values())
