"""IR-Net's binarizers as Larq quantizers (Qin et al., "Forward and Backward
Information Retention for Accurate Binary Neural Networks", CVPR 2020; the
method arXiv:2210.02637 compares IR²Net against). See docs/irnet.md.

- ``ede_sign`` (``EDESign``): forward sign(x); backward EDE, the error decay
  estimator k · t · (1 − tanh²(t · x)).
- ``libra_pb`` (``LibraPB``): Libra Parameter Binarization of a kernel, per
  output channel o: ŵ = (w − mean(w_o)) / std(w − mean(w_o)) (unbiased std),
  s_o = 2^round(log2(mean |ŵ_o|)) (no gradient), output sign(ŵ) · s_o with the
  EDE gradient flowing back through the standardization to w.

Both are registered with Keras under these names (and their class names), so
``QuantConv2D(..., kernel_quantizer="libra_pb", input_quantizer="ede_sign")``
works and saved models load without ``custom_objects``.

The temperature t is schedule state, not a weight: every quantizer holds a
non-trainable variable, set for the whole model by ``set_ede_temperature``
(k = max(1/t, 1) follows from t) at every epoch's start. The variables are
tracked by ``tf.train.Checkpoint`` (so a resumed training run continues the
schedule) but, like Larq's own quantizer state, are not among the layer's
weights. Weights files and ``.keras`` files hold every quantizer's t, but a
file may lack the kernel quantizer's (``LibraPB``, which the stage-1 model of
the two-stage recipe does not have): stage 1's weights load into the stage-2
model, its kernel quantizers keeping the t the schedule gives them. The
activation quantizers' t (``EDESign``, in both stages) are the file's record
of IR-Net's binarizer: weights of the other binarizer are refused
(``ir2net_tf.models.weights``). See docs/irnet.md.
"""

import math
from typing import Iterator, Optional

import larq as lq
import numpy as np
import tensorflow as tf

# The release's schedule: t rises log-linearly from T_MIN to T_MAX over training.
T_MIN = 1e-3
T_MAX = 1e1


def ede_schedule(epoch: int, epochs: int) -> float:
    """t at the start of ``epoch`` (0-based) of ``epochs``, as the release sets it:
    t = 10^(log10 T_min + (log10 T_max − log10 T_min) · epoch / epochs)."""
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs}.")
    low, high = math.log10(T_MIN), math.log10(T_MAX)
    return 10.0 ** (low + (high - low) * epoch / epochs)


def ede_k(t):
    """k = 1/t while t < 1, else 1 (the release's rule), for a float or tensor."""
    if isinstance(t, (int, float)):
        return max(1.0 / t, 1.0)
    return tf.maximum(1.0 / t, 1.0)


def ede_sign(x, t):
    """sign(x) (Larq's: sign(0) = +1) with the EDE gradient k·t·(1 − tanh²(t·x)).

    Args:
        x: the tensor to binarize.
        t: the temperature, a scalar tensor (no gradient flows to it).

    Returns:
        ±1 of ``x``'s shape and dtype.
    """
    t = tf.stop_gradient(tf.cast(t, x.dtype))

    @tf.custom_gradient
    def _sign(x):
        def grad(dy):
            return dy * ede_k(t) * t * (1.0 - tf.square(tf.tanh(t * x)))

        return lq.math.sign(x), grad

    return _sign(x)


def libra_pb_standardize(kernel):
    """ŵ: each output channel (the last axis) of ``kernel`` minus its mean,
    divided by its unbiased standard deviation (PyTorch's ``std``)."""
    axes = list(range(kernel.shape.rank - 1))
    centred = kernel - tf.reduce_mean(kernel, axis=axes, keepdims=True)
    count = int(np.prod([kernel.shape[a] for a in axes]))
    variance = tf.reduce_sum(
        tf.square(centred - tf.reduce_mean(centred, axis=axes, keepdims=True)), axis=axes, keepdims=True
    ) / max(count - 1, 1)
    return centred / tf.sqrt(variance)


def libra_pb_scale(standardized):
    """s_o = 2^round(log2(mean |ŵ_o|)) per output channel, without gradient."""
    axes = list(range(standardized.shape.rank - 1))
    mean_abs = tf.reduce_mean(tf.abs(tf.stop_gradient(standardized)), axis=axes, keepdims=True)
    return tf.pow(tf.constant(2.0, standardized.dtype), tf.round(tf.math.log(mean_abs) / math.log(2.0)))


class _EDEQuantizer(lq.quantizers.Quantizer):
    """A 1-bit quantizer holding the EDE temperature t as a non-trainable variable."""

    precision = 1

    def __init__(self, temperature: float = T_MIN, **kwargs):
        super().__init__(**kwargs)
        self.initial_temperature = float(temperature)
        self.temperature = self.add_weight(
            name="temperature", shape=(), dtype=tf.float32, trainable=False,
            initializer=tf.keras.initializers.Constant(self.initial_temperature),
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    @property
    def non_trainable_weights(self):
        # Schedule state, not a model weight (Larq's quantizers hide theirs too).
        return []

    def get_config(self):
        return {**super().get_config(), "temperature": self.initial_temperature}


@lq.utils.register_alias("ede_sign")
@lq.utils.register_keras_custom_object
class EDESign(_EDEQuantizer):
    """IR-Net's activation binarizer: sign forward, EDE backward.

    Args:
        temperature: initial t (the schedule's start by default); the training
            command sets it every epoch (``set_ede_temperature``).
    """

    def call(self, inputs):
        return ede_sign(inputs, self.temperature)


@lq.utils.register_alias("libra_pb")
@lq.utils.register_keras_custom_object
class LibraPB(_EDEQuantizer):
    """IR-Net's kernel binarizer: Libra-PB with a power-of-two scale per output
    channel and the EDE gradient through the standardization.

    Args:
        temperature: initial t, as for ``EDESign``.
    """

    def load_own_variables(self, store):
        # A stage-1 file (its model has no kernel quantizer) holds no t for
        # it: the schedule sets t anyway (see the module's docstring).
        if len(store.keys()):
            super().load_own_variables(store)

    def call(self, inputs):
        standardized = libra_pb_standardize(inputs)
        return ede_sign(standardized, self.temperature) * libra_pb_scale(standardized)


def ede_quantizers(model) -> Iterator[_EDEQuantizer]:
    """Every EDE quantizer (``EDESign`` and ``LibraPB``) of ``model``, nested models included."""
    return (module for module in model.submodules if isinstance(module, _EDEQuantizer))


def uses_irnet(model) -> bool:
    """Whether ``model`` has any IR-Net quantizer."""
    return next(ede_quantizers(model), None) is not None


def set_ede_temperature(model, t: float) -> int:
    """Sets t (and with it k = max(1/t, 1)) on every EDE quantizer of ``model``.

    Returns:
        How many quantizers were set.
    """
    if not t > 0:
        raise ValueError(f"The EDE temperature must be positive; got {t}.")
    count = 0
    for quantizer in ede_quantizers(model):
        quantizer.temperature.assign(float(t))
        count += 1
    return count


def ede_temperature(model) -> Optional[float]:
    """The model's t (that of its first EDE quantizer), or None without any."""
    quantizer = next(ede_quantizers(model), None)
    return None if quantizer is None else float(quantizer.temperature.numpy())


class EDESchedule(tf.keras.callbacks.Callback):
    """Sets the release's t (``ede_schedule``) on ``model`` at every epoch start.

    The run calls ``fit`` once per epoch with ``initial_epoch``, so ``epoch``
    is the stage's epoch, also after resuming.

    Args:
        model: the model whose quantizers to set (the trained student).
        epochs: the stage's number of epochs.
    """

    def __init__(self, model, epochs: int):
        super().__init__()
        self.student, self.epochs = model, int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        set_ede_temperature(self.student, ede_schedule(epoch, self.epochs))


# ------------------------------------------------------------------ deployment


def deployable(model: tf.keras.Model) -> tf.keras.Model:
    """An equivalent model for LCE: IR-Net quantizers replaced by ``ste_sign``.

    LCE's converter recognises Larq's own quantizers only. In inference the
    IR-Net ones compute sign(x) (``EDESign``) and sign(ŵ) · s_o (``LibraPB``);
    sign(ŵ) = sign(w − mean(w_o)) is a plain ±1 kernel and s_o a positive
    power of two per output channel, which commutes with a max pool and folds
    exactly into the batch norm that follows the convolution (γ · s_o, moving
    mean / s_o). So each such convolution becomes a ``QuantConv2D`` with
    ``ste_sign`` input and kernel quantizers holding ŵ, every other layer keeps
    its weights, and the outputs are those of ``model`` (up to float rounding
    in the batch norms). ``model`` itself is not changed.

    Args:
        model: a Keras model, possibly with ``EDESign``/``LibraPB`` quantizers.

    Returns:
        ``model`` itself when it has no IR-Net quantizer, else the converted copy.

    Raises:
        ValueError: a Libra-PB convolution whose scales are not all 1 is not
            followed by a BatchNormalization (through max pools only).
    """
    if not uses_irnet(model):
        return model

    def clone(layer):
        config = layer.get_config()
        for attribute in ("input_quantizer", "kernel_quantizer"):
            if isinstance(getattr(layer, attribute, None), _EDEQuantizer):
                config[attribute] = "ste_sign"
        return layer.__class__.from_config(config)

    twin = tf.keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())  # the same weights in the same order (t is no weight)
    for source in model.submodules:
        if isinstance(getattr(source, "kernel_quantizer", None), LibraPB):
            _fold_libra_pb(source, twin.get_layer(source.name), twin)
    return twin


def _fold_libra_pb(source, target, twin) -> None:
    """Puts ŵ into ``target``'s kernel and folds s_o into the next batch norm."""
    standardized = libra_pb_standardize(tf.convert_to_tensor(source.kernel))
    scale = libra_pb_scale(standardized).numpy().reshape(-1)
    target.kernel.assign(standardized)
    if np.all(scale == 1.0):
        return
    norm = _next_batch_norm(twin.get_layer(source.name))
    if norm is None or not norm.scale:
        raise ValueError(
            f"{source.name}: its Libra-PB scales can only be folded into a BatchNormalization (with "
            "scale=True) right after the convolution (max pools in between are fine); this model has "
            "none there, so it cannot be exported as plain LCE binary convolutions."
        )
    norm.gamma.assign(norm.gamma * scale)
    norm.moving_mean.assign(norm.moving_mean / scale)


def _next_batch_norm(layer):
    """The BatchNormalization that alone consumes ``layer``'s output, possibly
    through max pools, or None."""
    while True:
        consumers = [node.outbound_layer for node in layer._outbound_nodes]
        if len(consumers) != 1:
            return None
        layer = consumers[0]
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            return layer
        if not isinstance(layer, tf.keras.layers.MaxPool2D):
            return None
