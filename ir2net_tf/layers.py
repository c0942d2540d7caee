"""The building blocks every IR²Net model shares (SPEC: "Binary convolution",
"Recovery heads").

Layer classes here are registered with Keras under the package name
``ir2net_tf``, so a saved model loads back without ``custom_objects``.
Factories (``binary_conv``, ``batch_norm``, ``activation``) return stock Keras
or Larq layers configured the way the reference PyTorch code behaves.
"""

import larq as lq
import tensorflow as tf

PACKAGE = "ir2net_tf"

# PyTorch's BatchNorm defaults: eps 1e-5, and its momentum 0.1 is Keras' 0.9.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

PAD_VALUES = (0.0, 1.0)
ACTIVATIONS = ("prelu", "hardtanh")


def binary_conv(
    filters: int,
    *,
    kernel_size: int = 3,
    strides: int = 1,
    binary_weights: bool = True,
    pad_values: float = 0.0,
    name: str = None,
) -> lq.layers.QuantConv2D:
    """A binary convolution: sign activations, sign weights, no bias, no scaling.

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: stride in both directions.
        binary_weights: ``True`` for 1-bit weights (``ste_sign`` with the
            ``weight_clip`` constraint). ``False`` is step 1 of the two-step
            ImageNet recipe: real-valued weights, still binary activations.
            Both settings create the same variables under the same names, so
            step-1 weights load into the step-2 model unchanged.
        pad_values: the value the *binarized* input is padded with. The
            reference pads with 0 (faithful default); LCE also supports 1.0.
        name: layer name.
    """
    if pad_values not in PAD_VALUES:
        raise ValueError(
            f"pad_values must be one of {PAD_VALUES} (0.0 is the reference's "
            f"zero padding, 1.0 is LCE's one-padding); got {pad_values!r}."
        )
    return lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        pad_values=pad_values,
        input_quantizer="approx_sign",
        kernel_quantizer="ste_sign" if binary_weights else None,
        kernel_constraint="weight_clip" if binary_weights else None,
        use_bias=False,
        name=name,
    )


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
