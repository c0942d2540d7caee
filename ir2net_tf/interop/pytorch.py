"""Import the authors' PyTorch IR²Net checkpoints (ImageNet ResNet-18/34).

The reference training code saves ``checkpoint.pth.tar`` files holding a
``state_dict`` of a model wrapped in ``nn.DataParallel`` (every key starts
with ``module.``). This module reads one, maps every tensor to the matching
layer of ``IR2ResNet18``/``IR2ResNet34`` built with ``padding="pytorch"``
(PyTorch's symmetric padding, so the outputs are the reference's), and saves
Keras weights::

    from ir2net_tf.interop import pytorch as pytorch_import
    model = pytorch_import.import_checkpoint("checkpoint.pth.tar", output="ir2_b.weights.h5")

Every checkpoint key must be used and every model weight set; anything
missing, left over or of the wrong shape fails the import with a message that
names it. PyTorch is an optional dependency (``pip install torch==2.13.0``,
the ``torch`` extra), needed only to read the checkpoint.

Layouts: PyTorch convolution kernels are (out, in/groups, kh, kw), Keras'
(kh, kw, in/groups, out); a depthwise convolution with depth multiplier r − 1
is PyTorch's grouped convolution with groups = channels, whose output channel
c·(r − 1) + j reads input channel c, which is Keras' kernel[:, :, c, j]; dense
kernels are transposed; the reference stores binary kernels flattened as
(out·in·3·3, 1).
"""

import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from ir2net_tf._util import files

BN_KEYS = ("weight", "bias", "running_mean", "running_var")
# Counted by PyTorch's BatchNorm for its momentum-free mode; nothing in Keras
# corresponds to it, so it is checked and consumed but not stored.
BN_COUNTER = "num_batches_tracked"
DATAPARALLEL_PREFIX = "module."
TORCH_HINT = (
    "Reading PyTorch checkpoints needs PyTorch, an optional dependency of ir2net_tf: "
    "pip install torch==2.13.0 (the CPU build is enough; in a checkout: pip install -e '.[torch]')."
)


class CheckpointError(ValueError):
    """The checkpoint cannot be read or does not fit the model; the message
    says where and why."""


# ------------------------------------------------------------------ reading


def _torch():
    try:
        import torch
    except ImportError as error:  # ModuleNotFoundError, or a broken install
        raise ImportError(f"{TORCH_HINT} ({error})") from error
    return torch


def load_state_dict(path) -> Dict[str, np.ndarray]:
    """The checkpoint's tensors as float32/int64 NumPy arrays, ``module.`` stripped.

    Accepts a training checkpoint (a dict with ``state_dict``) or a bare state
    dict. Loads with ``weights_only=True``: tensors and plain Python values
    only, no arbitrary pickled code.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint {path!r} does not exist.")
    torch = _torch()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors, zip errors, unsupported globals, ...
        # Some errors (an empty file's EOFError) have no message: name the type then.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"Cannot read {path!r} as a PyTorch checkpoint: {reason}. "
            "Expected a file saved with torch.save (e.g. the reference's checkpoint.pth.tar)."
        ) from error
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise CheckpointError(f"{path!r} holds no state dict (a mapping of names to tensors).")
    state = {}
    for key, value in checkpoint.items():
        if not torch.is_tensor(value):
            raise CheckpointError(f"{path!r}: entry {key!r} of the state dict is not a tensor.")
        name = key[len(DATAPARALLEL_PREFIX):] if key.startswith(DATAPARALLEL_PREFIX) else key
        if name in state:
            raise CheckpointError(f"{path!r}: key {name!r} appears with and without 'module.'.")
        array = value.detach().cpu()
        state[name] = array.numpy() if not array.is_floating_point() else array.float().numpy()
        if state[name].size == 0:
            raise CheckpointError(f"{path!r}: tensor {key!r} is empty (shape {tuple(state[name].shape)}).")
        if state[name].dtype.kind == "f" and not np.isfinite(state[name]).all():
            bad = int(np.count_nonzero(~np.isfinite(state[name])))
            raise CheckpointError(f"{path!r}: tensor {key!r} holds {bad} NaN or infinite values; the checkpoint "
                                  "is damaged or comes from a run that diverged.")
    return state


def _dims(state, key: str, ndim: int) -> Tuple[int, ...]:
    """The shape of ``state[key]``, which must exist with ``ndim`` dimensions
    of at least 1 (a CheckpointError naming the key otherwise)."""
    if key not in state:
        raise CheckpointError(f"The checkpoint has no {key!r}.")
    shape = tuple(state[key].shape)
    if len(shape) != ndim or min(shape) < 1:
        raise CheckpointError(f"The checkpoint's {key!r} has shape {shape}; expected {ndim} non-empty dimensions.")
    return shape


def detect_architecture(state: Dict[str, np.ndarray]) -> Tuple[str, str, int]:
    """(model name, variant, num_classes) that a reference state dict was saved from."""
    blocks = {}
    for key in state:
        match = re.match(r"layer(\d)\.(\d+)\.", key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    depths = tuple(blocks.get(s, 0) for s in (1, 2, 3, 4))
    candidates = importable_models()
    spec = next((s for s in candidates if s.depths == depths), None)
    if spec is None:
        known = ", ".join(f"{s.name} has {list(s.depths)}" for s in candidates)
        raise CheckpointError(
            f"The checkpoint's stages have {list(depths)} blocks; {known}. Is it an ImageNet IR²Net "
            "ResNet checkpoint?"
        )
    if "fc.weight" not in state:
        raise CheckpointError("The checkpoint has no classifier ('fc.weight').")
    classes = _dims(state, "fc.weight", 2)[0]
    if "fusion.weight" in state:
        found = ("full", None, None)
    elif "fusion.cheap_operation.0.weight" in state:
        cheap, per_group = _dims(state, "fusion.cheap_operation.0.weight", 4)[:2]
        primary = _dims(state, "fusion.primary_conv.0.weight", 4)[0]
        # m·(r − 1) cheap channels from m primary ones, in groups of per_group.
        found = ("compact", cheap // primary + 1, primary // per_group)
    else:
        raise CheckpointError(
            "The checkpoint has no fusion head ('fusion.weight' for a full head or "
            "'fusion.primary_conv.*'/'fusion.cheap_operation.*' for a compact one)."
        )
    variant = next((name for name, v in spec.variants.items() if _head_signature(v.head) == found), None)
    if variant is None:
        known = ", ".join(f"{name} ({v.head.describe()})" for name, v in spec.variants.items())
        raise CheckpointError(
            f"The checkpoint's fusion head (ratio {found[1]}, {found[2]} groups) is none of {spec.name}'s "
            f"variants: {known}."
        )
    return spec.name, variant, classes


def importable_models():
    """The zoo models the reference's ImageNet checkpoints fit: the ResNets
    that support PyTorch's padding."""
    from ir2net_tf import zoo

    return [s for s in zoo.MODELS.values() if s.method == "ir2net" and s.depths and "pytorch" in s.paddings]


def _head_signature(head) -> Tuple[str, Optional[int], Optional[int]]:
    """(kind, ratio, groups) of a head on the reference's 1024 → 512 fusion."""
    if head.kind == "full":
        return ("full", None, None)
    primary = -(-512 // head.ratio)
    return ("compact", head.ratio, head.groups_for(primary))


# ------------------------------------------------------------------ mapping


def torch_prefix(layer_name: str) -> Optional[str]:
    """The reference module that holds the weights of our layer ``layer_name``."""
    fixed = {
        "stem_conv": "conv1",
        "stem_bn": "bn1",
        "stem_act": "prelu",
        "recovery_fusion_conv": "fusion",
        "recovery_fusion_bn": "fbn",
        "recovery_fusion_act": "fprelu",
        "recovery_fusion_primary_conv": "fusion.primary_conv.0",
        "recovery_fusion_primary_bn": "fusion.primary_conv.1",
        "recovery_fusion_primary_act": "fusion.primary_conv.2",
        "recovery_fusion_cheap_conv": "fusion.cheap_operation.0",
        "recovery_fusion_cheap_bn": "fusion.cheap_operation.1",
        "recovery_fusion_cheap_act": "fusion.cheap_operation.2",
        "classifier_bn": "bn2",
        "predictions": "fc",
    }
    if layer_name in fixed:
        return fixed[layer_name]
    match = re.fullmatch(r"stage(\d)_block(\d+)_(bconv|bn|act|down_conv|down_bn)", layer_name)
    if not match:
        return None
    stage, block, part = match.groups()
    module = {"bconv": "binary_conv", "bn": "bn1", "act": "prelu", "down_conv": "downsample.1",
              "down_bn": "downsample.2"}[part]
    return f"layer{stage}.{int(block) - 1}.{module}"


def _take(state, used, key, layer_name) -> np.ndarray:
    if key not in state:
        raise CheckpointError(f"Layer {layer_name!r} needs checkpoint key {key!r}, which is missing.")
    used.add(key)
    return state[key]


def _shape_error(layer_name, key, got, expected, note=""):
    return CheckpointError(
        f"Layer {layer_name!r}: checkpoint key {key!r} has shape {tuple(got)}, the model needs "
        f"{tuple(expected)}{note}. Build the model with the checkpoint's architecture "
        "(model, variant, num_classes)."
    )


def _conv_kernel(layer, state, used, prefix) -> np.ndarray:
    """PyTorch (out, in/groups, kh, kw) → Keras (kh, kw, in/groups, out)."""
    kh, kw, per_group, out = layer.kernel.shape
    if layer.name.endswith("_bconv"):
        # Stored flattened as (out·in·kh·kw, 1) by the reference's binary conv.
        key = f"{prefix}.weights"
        flat = _take(state, used, key, layer.name)
        if flat.size != out * per_group * kh * kw:
            raise _shape_error(layer.name, key, flat.shape, (out * per_group * kh * kw, 1),
                               f" (a flattened ({out}, {per_group}, {kh}, {kw}) kernel)")
        weight = flat.reshape(out, per_group, kh, kw)
    else:
        key = f"{prefix}.weight"
        weight = _take(state, used, key, layer.name)
        if weight.shape != (out, per_group, kh, kw):
            raise _shape_error(layer.name, key, weight.shape, (out, per_group, kh, kw))
    return weight.transpose(2, 3, 1, 0)


def _depthwise_kernel(layer, state, used, prefix) -> np.ndarray:
    """PyTorch (C·M, 1, kh, kw) with groups = C → Keras (kh, kw, C, M):
    PyTorch's output channel c·M + j reads input channel c, Keras' kernel[:, :, c, j]."""
    kh, kw, channels, multiplier = layer.depthwise_kernel.shape
    key = f"{prefix}.weight"
    weight = _take(state, used, key, layer.name)
    if weight.shape != (channels * multiplier, 1, kh, kw):
        raise _shape_error(layer.name, key, weight.shape, (channels * multiplier, 1, kh, kw))
    return weight.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)


def _layer_values(layer, state, used, prefix) -> List[np.ndarray]:
    """The values of ``layer.get_weights()``, in order, from the checkpoint."""
    if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
        values = [_depthwise_kernel(layer, state, used, prefix)]
    elif isinstance(layer, tf.keras.layers.Conv2D):
        values = [_conv_kernel(layer, state, used, prefix)]
    elif isinstance(layer, tf.keras.layers.BatchNormalization):
        values = [_take(state, used, f"{prefix}.{name}", layer.name) for name in BN_KEYS]
        for name, value in zip(BN_KEYS, values):
            if value.shape != (layer.moving_mean.shape[0],):
                raise _shape_error(layer.name, f"{prefix}.{name}", value.shape, layer.moving_mean.shape)
        if f"{prefix}.{BN_COUNTER}" in state:
            used.add(f"{prefix}.{BN_COUNTER}")
        if np.any(values[3] < 0):
            raise CheckpointError(f"Layer {layer.name!r}: {prefix}.running_var has negative entries.")
        return values
    elif isinstance(layer, tf.keras.layers.PReLU):
        key = f"{prefix}.weight"
        weight = _take(state, used, key, layer.name)
        alpha_shape = tuple(layer.alpha.shape)
        if weight.size not in (1, int(np.prod(alpha_shape))):
            raise _shape_error(layer.name, key, weight.shape, (int(np.prod(alpha_shape)),))
        # nn.PReLU() (one slope) broadcasts; nn.PReLU(C) is per channel.
        values = [np.broadcast_to(weight.reshape(-1), (int(np.prod(alpha_shape)),)).reshape(alpha_shape)]
    elif isinstance(layer, tf.keras.layers.Dense):
        inputs, outputs = layer.kernel.shape
        weight = _take(state, used, f"{prefix}.weight", layer.name)
        if weight.shape != (outputs, inputs):
            raise _shape_error(layer.name, f"{prefix}.weight", weight.shape, (outputs, inputs))
        values = [weight.T]
        if layer.use_bias:
            bias = _take(state, used, f"{prefix}.bias", layer.name)
            if bias.shape != (outputs,):
                raise _shape_error(layer.name, f"{prefix}.bias", bias.shape, (outputs,))
            values.append(bias)
    else:
        raise CheckpointError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has weights but no known PyTorch layout."
        )
    return values


def assign_state_dict(model: tf.keras.Model, state: Dict[str, np.ndarray]) -> Dict[str, int]:
    """Sets every weight of ``model`` from the reference state dict ``state``.

    Fails (``CheckpointError``), before changing anything, when a model layer
    has no checkpoint key, a key has the wrong shape, or checkpoint keys are
    left over. Returns counts of layers and keys used, and of binary weights
    that are exactly 0: the reference's ``torch.sign`` makes them 0, Larq and
    LCE +1, so outputs can differ slightly where they occur (rare in trained
    weights).
    """
    used = set()
    assignments = []
    zero_binary_weights = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = torch_prefix(layer.name)
        if prefix is None:
            raise CheckpointError(
                f"Layer {layer.name!r} of {model.name!r} has no counterpart in the reference "
                "checkpoint layout; import into IR2ResNet18/IR2ResNet34 built by the zoo."
            )
        values = _layer_values(layer, state, used, prefix)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != expected:  # a guard on our own layout code
            raise CheckpointError(f"Layer {layer.name!r}: mapped shapes {[v.shape for v in values]} != {expected}.")
        assignments.append((layer, [np.asarray(v, dtype=np.float32) for v in values]))
        if layer.name.endswith("_bconv"):
            zero_binary_weights += int(np.sum(values[0] == 0))
    left_over = sorted(set(state) - used)
    if left_over:
        shown = ", ".join(left_over[:10]) + (f" and {len(left_over) - 10} more" if len(left_over) > 10 else "")
        raise CheckpointError(
            f"{len(left_over)} checkpoint key(s) have no place in {model.name!r}: {shown}. The "
            "checkpoint is of another architecture (model, variant or recovery head)."
        )
    for layer, values in assignments:
        layer.set_weights(values)
    return {"layers": len(assignments), "keys": len(used), "zero_binary_weights": zero_binary_weights}


# -------------------------------------------------------------- the whole job


def build_for_checkpoint(
    state: Dict[str, np.ndarray],
    *,
    model: Optional[str] = None,
    variant: Optional[str] = None,
    binary_weights: bool = True,
    input_size: int = 224,
    classifier_activation: Optional[str] = "softmax",
) -> tf.keras.Model:
    """The zoo model (``padding="pytorch"``) for ``state``; ``model`` and
    ``variant`` default to what the checkpoint holds and must agree with it."""
    from ir2net_tf import zoo

    found_model, found_variant, num_classes = detect_architecture(state)
    if model is not None and model != found_model:
        raise CheckpointError(f"The checkpoint holds an {found_model}, not an {model}.")
    if variant is not None and zoo.get_spec(found_model).parse_variant(variant) != found_variant:
        raise CheckpointError(f"The checkpoint holds variant {found_variant}, not variant {variant.upper()}.")
    return zoo.build(
        found_model,
        input_shape=(input_size, input_size, 3),
        variant=found_variant,
        num_classes=num_classes,
        binary_weights=binary_weights,
        padding="pytorch",
        classifier_activation=classifier_activation,
    )


def check_output_path(path) -> str:
    """Fails early, before the slow import, when ``path`` cannot be written."""
    path = os.fspath(path)
    if not path.endswith(".h5"):
        raise ValueError(f"Output {path!r} must end in .h5 (Keras HDF5 weights, e.g. ir2_b.weights.h5).")
    return files.check_writable(path, option="--output")


def save_weights_atomic(model: tf.keras.Model, path) -> None:
    """Saves Keras weights to ``path`` atomically (``ir2net_tf._util.files``).

    ``*.weights.h5`` is Keras' weights format: it matches layers by class and
    position, so it loads into the ``padding="pytorch"`` model only. Any other
    ``*.h5`` is the legacy HDF5 format, which matches the layers that have
    weights in order: it loads into either padding setting.
    """
    files.save_weights(model, check_output_path(path))


def import_checkpoint(
    checkpoint,
    *,
    model: Optional[str] = None,
    variant: Optional[str] = None,
    binary_weights: bool = True,
    input_size: int = 224,
    output=None,
    classifier_activation: Optional[str] = "softmax",
) -> tf.keras.Model:
    """Reads a reference checkpoint, returns the Keras model holding its weights
    and, with ``output``, saves them there (HDF5, atomically).

    Args:
        checkpoint: path of the ``.pth``/``.pth.tar`` file.
        model, variant: expected architecture (default: what the checkpoint holds).
        binary_weights: ``True`` (default) for step-2 checkpoints, the released
            models: weights are binarized by sign. ``False`` for step-1
            checkpoints (real weights, binary activations).
        input_size: input height and width of the Keras model (multiple of 32).
        output: path ending in ``.h5`` for the weights, or None.
        classifier_activation: ``"softmax"`` or None for logits.

    The model is built with ``padding="pytorch"``; the weights also load into
    the default ("same") model, whose outputs then differ slightly from the
    reference's.
    """
    if output is not None:
        check_output_path(output)
    state = load_state_dict(checkpoint)
    keras_model = build_for_checkpoint(
        state, model=model, variant=variant, binary_weights=binary_weights,
        input_size=input_size, classifier_activation=classifier_activation,
    )
    assign_state_dict(keras_model, state)
    if output is not None:
        save_weights_atomic(keras_model, output)
    return keras_model
