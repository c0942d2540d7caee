"""The building blocks every IR²Net model shares (docs/method.md: "Binary convolutions",
"Recovery heads").

Layer classes here are registered with Keras under the package name
``ir2net_tf``, so a saved model loads back without ``custom_objects``.
Factories (``binary_conv``, ``batch_norm``, ``activation``) return stock Keras
or Larq layers configured the way the reference PyTorch code behaves.
"""

import contextlib
import logging

import larq as lq
import tensorflow as tf

from ir2net_tf.nn import binarization  # noqa: F401  (registers "ede_sign" and "libra_pb")

PACKAGE = "ir2net_tf"

# PyTorch's BatchNorm defaults: eps 1e-5, and its momentum 0.1 is Keras' 0.9.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

from ir2net_tf.config import PAD_VALUES  # noqa: E402  (what LCE can pad with: declared with the setting)
# "bireal": approx_sign activations, ste_sign weights with weight clipping
# (IR²Net's). "irnet": IR-Net's EDE activations and Libra-PB weights, no
# clipping (ir2net_tf.nn.binarization, docs/irnet.md).
from ir2net_tf.config import BINARIZERS  # noqa: E402  (the setting's values, declared with it)
ACTIVATIONS = ("prelu", "hardtanh")
# "same": TensorFlow's padding (for stride 2 on an even size it pads 0 before
# and 1 after). "pytorch": PyTorch's symmetric ``padding=k // 2``, which for
# stride 2 on an even size reads 1 padded pixel before and none after. Models
# whose weights come from PyTorch (``ir2net_tf.interop.pytorch``) need it.
PADDINGS = ("same", "pytorch")


def _drop_clip_advice(record: logging.LogRecord) -> bool:
    # Larq warns for every binary layer without a kernel constraint. No
    # clipping is the reference's behaviour and our default (see
    # ``binary_conv``'s ``weight_clip``), and IR-Net's Libra-PB never clips,
    # so the advice is noise here.
    return "without setting `kernel_constraint`" not in record.getMessage()


@contextlib.contextmanager
def without_clip_advice():
    """Larq's advice dropped while our builders make a layer, or our tools
    load a saved model of ours (only then: the logger is Larq's, and a
    user's own layers keep it)."""
    logger = logging.getLogger("larq.layers_base")
    logger.addFilter(_drop_clip_advice)
    try:
        yield
    finally:
        logger.removeFilter(_drop_clip_advice)


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(
            f"padding must be one of {PADDINGS} ('same' is TensorFlow's, 'pytorch' "
            f"reproduces PyTorch's symmetric padding for imported weights); got {padding!r}."
        )
    return padding


def binary_conv(
    filters: int,
    *,
    kernel_size: int = 3,
    strides: int = 1,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    padding: str = "same",
    weight_clip: bool = False,
    name: str = None,
    binarizer: str = "bireal",
) -> lq.layers.QuantConv2D:
    """A binary convolution: sign activations, sign weights, no bias, no scaling.

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: stride in both directions.
        binary_weights: ``True`` for 1-bit weights (``ste_sign``). ``False``
            is step 1 of the two-step ImageNet recipe: real-valued weights,
            still binary activations.
            Both settings create the same variables under the same names, so
            step-1 weights load into the step-2 model unchanged.
        pad_values: the value the *binarized* input is padded with. The
            reference pads with 0 (faithful default); LCE also supports 1.0.
        padding: ``"same"`` (default) or ``"pytorch"``: PyTorch's symmetric
            padding, which differs from "same" only for strided convolutions
            (``PyTorchPadQuantConv2D`` then; stride 1 is identical either way).
        weight_clip: ``False`` (default, as the reference): latent weights
            are never clipped; one beyond ±1 gets no gradient from
            ``ste_sign`` and keeps its value (weight decay aside). ``True``
            adds Larq's ``weight_clip`` constraint, which clips the latent
            binary weights to [−1, 1] after every update (binary weights only).
        name: layer name.
        binarizer: ``"bireal"`` (default, the description above) or
            ``"irnet"``: ``ede_sign`` activations and ``libra_pb`` weights
            (``ir2net_tf.nn.binarization``), no weight clipping.
    """
    if pad_values not in PAD_VALUES:
        raise ValueError(
            f"pad_values must be one of {PAD_VALUES} (0.0 is the reference's "
            f"zero padding, 1.0 is LCE's one-padding); got {pad_values!r}."
        )
    check_padding(padding)
    options = dict(
        strides=strides,
        pad_values=pad_values,
        input_quantizer="approx_sign",
        kernel_quantizer="ste_sign" if binary_weights else None,
        kernel_constraint="weight_clip" if binary_weights and weight_clip else None,
        use_bias=False,
        name=name,
    )
    _irnet_quantizers(binarizer, binary_weights, options)
    return _quant_conv(filters, kernel_size, padding, options)


def _quant_conv(filters, kernel_size, padding, options):
    with without_clip_advice():
        if padding == "pytorch" and options["strides"] != 1:
            return PyTorchPadQuantConv2D(filters, kernel_size, **options)
        return lq.layers.QuantConv2D(filters, kernel_size, padding="same", **options)


def _irnet_quantizers(binarizer: str, binary_weights: bool, options: dict) -> None:
    """Switches ``options`` to IR-Net's quantizers for ``binarizer="irnet"``."""
    if binarizer not in BINARIZERS:
        raise ValueError(
            f"binarizer must be one of {BINARIZERS} ('bireal' is IR²Net's, 'irnet' IR-Net's "
            f"Libra-PB and EDE); got {binarizer!r}."
        )
    if binarizer == "irnet":
        options.update(input_quantizer="ede_sign", kernel_quantizer="libra_pb" if binary_weights else None,
                       kernel_constraint=None)


def batch_norm(name: str = None) -> tf.keras.layers.BatchNormalization:
    """Batch normalization with PyTorch's defaults (epsilon 1e-5, momentum 0.1)."""
    return tf.keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class Hardtanh(tf.keras.layers.Layer):
    """Clips its input to [min_value, max_value], like ``torch.nn.Hardtanh``."""

    def __init__(self, min_value: float = -1.0, max_value: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not min_value < max_value:
            raise ValueError(
                f"Hardtanh needs min_value < max_value; got {min_value}, {max_value}."
            )
        self.min_value = float(min_value)
        self.max_value = float(max_value)

    def call(self, inputs):
        return tf.clip_by_value(inputs, self.min_value, self.max_value)

    def get_config(self):
        return {
            **super().get_config(),
            "min_value": self.min_value,
            "max_value": self.max_value,
        }


def activation(kind: str, name: str = None) -> tf.keras.layers.Layer:
    """The models' non-linearity: per-channel PReLU (ImageNet) or Hardtanh (CIFAR).

    The PReLU slopes start at 0.25, PyTorch's ``nn.PReLU`` default.
    """
    if kind == "prelu":
        return tf.keras.layers.PReLU(
            alpha_initializer=tf.keras.initializers.Constant(0.25),
            shared_axes=[1, 2],
            name=name,
        )
    if kind == "hardtanh":
        return Hardtanh(name=name)
    raise ValueError(f"Unknown activation {kind!r}; choose one of {ACTIVATIONS}.")


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class AdaptiveAvgPool2D(tf.keras.layers.Layer):
    """Average-pools an H×W map to ``output_size``×``output_size``.

    Like ``torch.nn.AdaptiveAvgPool2d`` for the case IR²Net uses: the input
    size must be a whole multiple of the output size, and the pool then has
    pool size = stride = H / output_size. Other sizes are refused rather than
    silently pooled with uneven windows.
    """

    def __init__(self, output_size: int, **kwargs):
        super().__init__(**kwargs)
        if int(output_size) < 1:
            raise ValueError(f"output_size must be a positive integer; got {output_size}.")
        self.output_size = int(output_size)

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(
                f"{self.name}: adaptive pooling needs a static height and width; "
                "build the model with a fixed input_shape."
            )
        for size in (height, width):
            if size % self.output_size:
                raise ValueError(
                    f"{self.name}: cannot pool a {height}x{width} map to "
                    f"{self.output_size}x{self.output_size} evenly: {size} is not a "
                    f"multiple of {self.output_size}. Choose an input size whose "
                    "feature maps divide evenly (e.g. 224 for ImageNet models, 32 "
                    "for CIFAR models)."
                )
        self._pool = (height // self.output_size, width // self.output_size)
        super().build(input_shape)

    def call(self, inputs):
        if self._pool == (1, 1):
            return inputs
        return tf.nn.avg_pool2d(inputs, self._pool, self._pool, padding="VALID")

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(
            [input_shape[0], self.output_size, self.output_size, input_shape[3]]
        )

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class ChannelSlice(tf.keras.layers.Layer):
    """Keeps the first ``channels`` channels (CIRec's ``out[:, :C_out]``)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] < self.channels:
            raise ValueError(
                f"{self.name}: cannot keep {self.channels} channels of an input "
                f"with {input_shape[-1]}."
            )
        super().build(input_shape)

    def call(self, inputs):
        if inputs.shape[-1] == self.channels:
            return inputs
        return inputs[..., : self.channels]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(list(input_shape[:-1]) + [self.channels])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class ChannelSplit(tf.keras.layers.Layer):
    """Splits the channels into ``groups`` equal parts (``tf.split``): a
    grouped convolution as one convolution per group, MeliusNet's stem and
    transitions (larq-zoo writes it as a Lambda, which a ``.keras`` file
    cannot load back)."""

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] % self.groups:
            raise ValueError(f"{self.name}: cannot split {input_shape[-1]} channels into {self.groups} groups.")
        super().build(input_shape)

    def call(self, inputs):
        return tf.split(inputs, self.groups, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[-1] = None if shape[-1] is None else shape[-1] // self.groups
        return [tf.TensorShape(shape)] * self.groups

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class FrontPaddedAdd(tf.keras.layers.Layer):
    """``x + w`` with ``w``'s channels zero-padded in front to ``x``'s:
    MeliusNet's improvement block adds its 64 new channels to the last 64
    (larq-zoo writes it as a Lambda, which a ``.keras`` file cannot load back)."""

    def call(self, inputs):
        x, w = inputs
        return x + tf.pad(w, [[0, 0], [0, 0], [0, 0], [x.shape[-1] - w.shape[-1], 0]])

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class SubsampleZeroPadShortcut(tf.keras.layers.Layer):
    """The CIFAR ResNet "option A" shortcut: no parameters.

    Takes every second pixel (``x[:, ::2, ::2, :]``) and zero-pads the channel
    axis equally on both sides up to ``channels``.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        extra = self.channels - input_shape[-1]
        if extra < 0 or extra % 2:
            raise ValueError(
                f"{self.name}: cannot zero-pad {input_shape[-1]} channels evenly "
                f"to {self.channels}."
            )
        self._pad = extra // 2
        super().build(input_shape)

    def call(self, inputs):
        x = inputs[:, ::2, ::2, :]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [self._pad, self._pad]])

    def compute_output_shape(self, input_shape):
        half = [None if d is None else (d + 1) // 2 for d in input_shape[1:3]]
        return tf.TensorShape([input_shape[0], *half, self.channels])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def classifier_pool(x, name: str):
    """Global average pooling as a full-size AveragePooling2D + Flatten.

    LCE runs this much faster than GlobalAveragePooling2D (larq-zoo does the
    same); the numbers are identical.
    """
    x = tf.keras.layers.AveragePooling2D(pool_size=x.shape[1:3], name=f"{name}_pool")(x)
    return tf.keras.layers.Flatten(name=f"{name}_flatten")(x)



def pytorch_padding(size: int, kernel_size: int, stride: int) -> tuple:
    """(before, after): the padding PyTorch's ``padding=k // 2`` really reads.

    PyTorch pads k // 2 on both sides, but on an even size with stride 2 its
    last window ends before the last padded row: padding only what is read
    gives the same output with "valid" and never looks like TensorFlow's
    "same" padding. (The LCE 0.16 converter takes a symmetric pad as large as
    or larger than "same"'s for "same" padding and fuses it away wrongly.)
    """
    before = kernel_size // 2
    outputs = (size + 2 * before - kernel_size) // stride + 1
    after = max(0, (outputs - 1) * stride + kernel_size - size - before)
    return before, after


def _pytorch_paddings(shape, kernel_size, strides) -> list:
    return [
        [0, 0],
        *(list(pytorch_padding(n, k, s)) for n, k, s in zip(shape[1:3], kernel_size, strides)),
        [0, 0],
    ]


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class PyTorchPadQuantConv2D(lq.layers.QuantConv2D):
    """A Larq ``QuantConv2D`` padded like PyTorch (``padding=k // 2``).

    PyTorch's reference pads the *binarized* input with zeros. A bit-packed
    LCE binary convolution has no 0 to pad with, and LCE's own zero padding
    follows TensorFlow's asymmetric "same" rule. So this layer pads the float
    input with +1 (which binarizes to +1), runs a "valid" convolution, and
    subtracts what those +1 pixels added: the convolution of an image that is
    1 on the padding border and 0 inside with the (binarized) kernel. That
    correction does not depend on the input, so the LCE converter folds it to
    a constant: the flatbuffer holds PADV2 → LceQuantize → LceBconv2d → SUB,
    and the result equals PyTorch's zero padding exactly (integers, for
    binary weights). With ``pad_values=1.0`` the +1 padding is kept, no
    correction. Needs a static input size.

    Variables, their names and shapes are those of a ``QuantConv2D``, so
    weights move freely between this layer and the "same"-padded one.
    """

    def __init__(self, *args, padding="valid", pad_values=0.0, **kwargs):
        if padding != "valid":
            raise ValueError(
                "PyTorchPadQuantConv2D pads by itself (like PyTorch's padding=k // 2); "
                f"leave padding at 'valid', got {padding!r}."
            )
        if pad_values not in PAD_VALUES:
            raise ValueError(f"pad_values must be one of {PAD_VALUES}; got {pad_values!r}.")
        # The parent pads nothing ("valid"); the value is this layer's business.
        super().__init__(*args, padding="valid", pad_values=0.0, **kwargs)
        self.border_value = float(pad_values)

    def call(self, inputs):
        if not inputs.shape[1:].is_fully_defined():
            raise ValueError(
                f"{self.name}: PyTorch padding needs a static input size; build the "
                "model with a fixed input_shape."
            )
        paddings = _pytorch_paddings(inputs.shape, self.kernel_size, self.strides)
        outputs = super().call(tf.pad(inputs, paddings, constant_values=1.0))
        if self.border_value == 1.0:
            return outputs
        # 1 on the padding border, 0 inside: what the +1 padding added.
        border = tf.pad(
            tf.zeros([1, *inputs.shape[1:]], dtype=outputs.dtype), paddings, constant_values=1.0
        )
        with lq.context.quantized_scope(True):
            kernel = tf.convert_to_tensor(self.kernel)
        correction = tf.nn.conv2d(border, kernel, strides=self.strides, padding="VALID")
        # The LCE converter (0.16) fuses a constant added right after a binary
        # convolution into its per-channel output bias, even when the constant
        # varies over positions, and the flatbuffer then fails to load.
        # Subtracting on a (batch, positions, channels) view keeps it a
        # separate SUB op; the reshapes move no data.
        height, width, channels = outputs.shape[1:]
        flat = tf.reshape(outputs, [-1, height * width, channels])
        flat = flat - tf.reshape(correction, [1, height * width, channels])
        return tf.reshape(flat, [-1, height, width, channels])

    # No compute_output_shape override: Keras' Conv2D.call applies it to the
    # already padded input, where the parent's "valid" rule is the right one.

    def get_config(self):
        config = super().get_config()
        config["pad_values"] = self.border_value
        return config


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class PyTorchPadding2D(tf.keras.layers.Layer):
    """Pads height and width the way a PyTorch conv or pool with
    ``kernel_size``, ``strides`` and ``padding=k // 2`` reads them
    (``pytorch_padding``), with ``value``; a "valid" conv or pool follows.

    ``value="lowest"`` pads with the dtype's lowest finite number, for
    ``MaxPool2d(padding=1)``, whose padding never wins (PyTorch pads with
    −inf; PReLU outputs can be negative, so zeros would).
    """

    def __init__(self, kernel_size: int, strides: int, value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.value = value if value == "lowest" else float(value)

    def _paddings(self, shape):
        if None in tuple(shape[1:3]):
            raise ValueError(f"{self.name}: PyTorch padding needs a static input size.")
        k, s = (self.kernel_size,) * 2, (self.strides,) * 2
        return _pytorch_paddings(shape, k, s)

    def call(self, inputs):
        value = inputs.dtype.min if self.value == "lowest" else self.value
        return tf.pad(inputs, self._paddings(inputs.shape), constant_values=value)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        for axis, (before, after) in zip((1, 2), self._paddings(shape)[1:3]):
            shape[axis] += before + after
        return tf.TensorShape(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "value": self.value,
        }
