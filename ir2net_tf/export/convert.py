"""The Keras side of an LCE export: the model as LCE converts it (IR-Net
quantizers folded, grouped convolutions sliced), its conversion to a TFLite
flatbuffer, and the layers LCE is known to compute wrongly
(``zero_padding_hazards``). Import ``ir2net_tf`` before TensorFlow (this
module does).
"""

from typing import Iterable, List, Optional, Sequence

import numpy as np

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from ir2net_tf.nn import binarization
from ir2net_tf.nn.complexity import is_binary_conv
from ir2net_tf.export.census import LCE_CUSTOM_OPS, operators
from ir2net_tf.export.errors import DeployError

TARGETS = ("arm", "xcore")
IO_TYPES = {"float32": tf.float32, "int8": tf.int8}


# ----------------------------------------------------------------- the Keras side


def all_layers(model) -> Iterable:
    """Every layer of ``model``, nested models' layers in their place."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from all_layers(layer)
        else:
            yield layer


def zero_padding_hazards(model) -> List[str]:
    """Binary convolutions LCE computes wrongly: zero padding (``pad_values=0``)
    on a feature map smaller than the kernel's reach, ``dilation × (kernel − 1)
    + 1``. Measured with LCE 0.16 and 3×3 kernels: 1×1 and 2×2 maps give wrong
    outputs, 3×3 and larger are exact; dilated by 2 (BinaryDenseNet37Dilated),
    maps up to 4×4 are wrong and 5×5 exact; one-padding is exact at every
    size. Zoo ImageNet models hit this below 96×96 input (their last stage is
    then 1×1 or 2×2)."""
    hazards = []
    for layer in all_layers(model):
        if is_binary_conv(layer) and layer.pad_values == 0.0 and layer.padding == "same":
            height, width = layer.input_shape[1:3]
            reach = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
            if height < reach[0] or width < reach[1]:
                hazards.append(f"{layer.name} ({height}x{width} input)")
    return hazards


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Gives every BatchNormalization random statistics and affine parameters.

    A freshly built model has moving mean 0, variance 1, gamma 1, beta 0: batch
    norm is then (almost) the identity and the integer outputs of a binary
    convolution that are exactly 0 stay exactly 0 up to the next binarization.
    Keras binarizes 0 to +1; LCE, which folds batch norm into a threshold, may
    round it either way. Trained models have no such exact ties; randomizing
    the statistics removes them from random models too, so a parity check on a
    random model tests the conversion, not the tie-breaking.
    """
    rng = np.random.default_rng(seed)
    for layer in all_layers(model):
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            values = []
            for weight in layer.weights:
                shape, name = weight.shape, weight.name
                if "gamma" in name:
                    values.append(rng.uniform(0.5, 1.5, shape))
                elif "beta" in name:
                    values.append(rng.normal(0.0, 0.1, shape))
                elif "moving_mean" in name:
                    values.append(rng.normal(0.0, 1.0, shape))
                else:  # moving_variance
                    values.append(rng.uniform(0.5, 2.0, shape))
            layer.set_weights([v.astype(np.float32) for v in values])


# -------------------------------------------------------------------- conversion


def float_twin(model):
    """The same topology with every binary convolution a float Conv2D: the
    full-precision network a binary one is compared against."""

    def clone(layer):
        if is_binary_conv(layer):
            config = {k: v for k, v in layer.get_config().items()
                      if k not in ("input_quantizer", "kernel_quantizer", "kernel_constraint", "pad_values", "metrics")}
            return tf.keras.layers.Conv2D.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    return tf.keras.models.clone_model(model, clone_function=clone)


class GroupsAsConvolutions(tf.keras.layers.Conv2D):
    """A grouped ``Conv2D`` computed as ``groups`` ordinary convolutions on
    channel slices, concatenated: the same kernel, the same outputs.

    TFLite runs a grouped ``CONV_2D`` on a slow scalar path that no other
    convolution takes (variant C's CIRec head spent 15.4 M of its 20.9 M
    extra instructions per inference there); sliced, each group is an
    ordinary ``CONV_2D`` for the fast kernels, between one ``SPLIT`` and one
    ``CONCATENATION``. Only the export uses it (``grouped_as_convolutions``):
    the trained model keeps its grouped layer.
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        # The kernel is (h, w, in / groups, out): group g's filters are its
        # g-th slice of the output channels, applied to the g-th input slice.
        pairs = zip(tf.split(inputs, self.groups, axis=axis), tf.split(kernel, self.groups, axis=-1))
        return tf.concat([super(GroupsAsConvolutions, self).convolution_op(x, k) for x, k in pairs], axis=axis)

    def _jit_compiled_convolution_op(self, inputs, kernel):
        # Conv2D compiles grouped convolutions with XLA (TensorFlow's CPU
        # kernel has none); sliced, they need no compiler.
        return self.convolution_op(inputs, kernel)


def is_grouped_float_conv(layer) -> bool:
    # Conv2D itself only: Larq's QuantConv2D may binarize, Conv2DTranspose
    # groups differently.
    return type(layer) is tf.keras.layers.Conv2D and layer.groups > 1


def grouped_as_convolutions(model):
    """``model`` with every grouped float ``Conv2D`` a
    ``GroupsAsConvolutions`` (the export's form of it) and the same weights;
    ``model`` itself when it has none. Nested models are rewritten too."""
    if not any(is_grouped_float_conv(layer) for layer in all_layers(model)):
        return model

    def clone(layer):
        if is_grouped_float_conv(layer):
            return GroupsAsConvolutions.from_config(layer.get_config())
        nested = grouped_as_convolutions(layer) if isinstance(layer, tf.keras.Model) else layer
        if nested is not layer:
            return nested
        return layer.__class__.from_config(layer.get_config())

    twin = tf.keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def convert_float(model) -> bytes:
    """A float model's flatbuffer from the standard TFLite converter."""


def convert(
    model,
    *,
    target: str = "arm",
    input_type: str = "float32",
    output_type: str = "float32",
    int8_range: Optional[Sequence[float]] = None,
) -> bytes:
    """The LCE flatbuffer of ``model`` (``larq_compute_engine.convert_keras_model``).

    int8 input/output needs int8 tensors to attach to: LCE only makes them for
    a quantized model, so without quantization-aware training ``int8_range``
    (LCE's ``experimental_default_int8_range``, "dummy" quantization meant for
    latency tests) is required.
    """
    import larq_compute_engine as lce

    if target not in TARGETS:
        raise DeployError(f"Unknown target {target!r}; choose one of {list(TARGETS)}.")
    for kind, value in (("input", input_type), ("output", output_type)):
        if value not in IO_TYPES:
            raise DeployError(f"Unknown {kind} type {value!r}; choose one of {list(IO_TYPES)}.")
    if "int8" in (input_type, output_type) and int8_range is None:
        raise DeployError(
            "int8 input/output needs a quantized model, and this one is float: pass "
            "--int8-range MIN MAX (LCE's dummy quantization, for latency tests; "
            "accuracy is not preserved) or use float32 input and output."
        )
    # IR-Net quantizers are not LCE's: convert their ste_sign equivalent
    # (scales folded into the batch norms). Parity is still checked against
    # ``model`` itself by the callers.
    try:
        model = binarization.deployable(model)
    except ValueError as error:
        raise DeployError(str(error)) from error
    model = grouped_as_convolutions(model)
    try:
        flatbuffer = lce.convert_keras_model(
            model,
            inference_input_type=IO_TYPES[input_type],
            inference_output_type=IO_TYPES[output_type],
            target=target,
            experimental_default_int8_range=tuple(int8_range) if int8_range is not None else None,
        )
    except Exception as error:  # the converter raises many kinds; all mean "cannot convert"
        detail = str(error).strip().splitlines()
        raise DeployError(
            f"LCE could not convert model {model.name!r}: {detail[-1] if detail else type(error).__name__}. "
            "Either some layer uses an operation that TFLite/LCE has no kernel for (only Keras/Larq layers with "
            "TFLite builtin equivalents can be deployed), or the converter itself failed on this model at this "
            "size (LCE 0.16 does on larq-zoo's DoReFaNet with its fully connected top at 224, not at 64)."
        ) from error
    unknown = sorted({name for name, custom in operators(flatbuffer) if custom and name not in LCE_CUSTOM_OPS})
    if unknown:
        raise DeployError(
            f"LCE could not convert every layer of model {model.name!r}: the flatbuffer would hold "
            f"{', '.join(unknown)}, TensorFlow op(s) that neither TFLite nor LCE can run. "
            f"Suspect layers: {', '.join(_suspect_layers(model)) or 'none found'}. Replace them with "
            "Keras/Larq layers that have TFLite equivalents."
        )
    return flatbuffer


def _suspect_layers(model) -> List[str]:
    """Layers that may hold arbitrary TensorFlow code: Lambdas and classes
    from outside Keras, Larq and this package."""
    known = ("tf_keras.", "keras.", "larq.", "ir2net_tf.")
    return [
        f"{layer.name!r} ({type(layer).__name__})"
        for layer in all_layers(model)
        if type(layer).__name__ in ("Lambda", "TFOpLambda") or not type(layer).__module__.startswith(known)
    ]
