"""Deployment with the Larq Compute Engine (LCE): convert a Keras model to a
TFLite flatbuffer, count its operators, check it computes what the Keras
model computes, and time it on the host.

Used by ``python -m export`` and by the catalog's benchmark command. Import
``ir2net_tf`` before TensorFlow (this module does).
"""

import collections
import statistics
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import larq as lq
import tensorflow as tf

from ir2net_tf import binarization
from ir2net_tf.complexity import is_binary_conv, is_multibit_conv  # noqa: F401  (is_binary_conv: part of this module's API)
from ir2net_tf import files
from ir2net_tf.files import atomic_write  # noqa: F401  (part of this module's API)

TARGETS = ("arm", "xcore")
IO_TYPES = {"float32": tf.float32, "int8": tf.int8}

# LCE's custom operators. LceQuantize binarizes (bit-packs) float activations
# before a binary convolution; LceDequantize unpacks them back to float.
BCONV_OP = "LceBconv2d"
BINARIZE_OPS = ("LceQuantize", "LceDequantize")
INT8_OPS = ("QUANTIZE", "DEQUANTIZE")
FLOAT_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
# The custom operators LCE's runtime implements. The converter turns any
# TensorFlow op without a TFLite builtin into a custom op of the same name
# (PyFunc, AsString, ...) instead of failing; no runtime can run those.
LCE_CUSTOM_OPS = ("LceBconv2d", "LceQuantize", "LceDequantize", "LceBMaxPool2d")

# Interpreter options of LCE's host interpreter. On x86 the default bconv
# kernel and the indirect BGEMM kernel differ several-fold in speed; the
# reference kernel is the readable, unoptimized one.
KERNELS = {
    "default": {},
    "indirect_bgemm": {"use_indirect_bgemm": True},
    "reference": {"use_reference_bconv": True},
}

# A binarized network is exact in its binary convolutions, but its float parts
# (stem, batch norm folded into the bconv output transform, recovery head) are
# computed in a different order by LCE. An activation within float rounding of
# zero can then binarize to the other sign, which changes a few outputs by a
# lot: so the largest absolute difference can be large while the top-1 class
# almost always agrees. The default threshold allows 1 disagreement in 100.
DEFAULT_MIN_AGREEMENT = 0.99
# Random weights leave small margins between the logits, so one such sign flip
# changes the top-1 class far more often than in a trained model (IR2ResNet34
# at 96×96: 6 of 32 inputs had a flip, 2 changed class). The conversion bugs
# we met dropped agreement to 6-70 % and left almost no input close.
RANDOM_WEIGHTS_MIN_AGREEMENT = 0.8
# An input whose outputs all agree to this fraction of the largest output
# computed identically up to float rounding (no sign flipped on its way).
CLOSE_TOLERANCE = 1e-3
# An input whose Keras top-1 leads the runner-up by at most this fraction of
# the output scale is a near-tie: one binary activation flipped by float
# rounding (above) can swap its top two classes in a correct conversion, so
# its agreement measures luck. Verification judges the other inputs and
# reports near-ties apart (a 1-in-64 near-tie failed a valid export at 99 %).
NEAR_TIE = 0.05
# The verification's judgement of a conversion on any inputs, random ones
# included (output_difference): the median over the inputs of each input's
# mean |keras - lce|, divided by the spread of the Keras outputs across the
# inputs. Top-1 agreement is judged only on labelled data (held-out,
# --images with y); on random inputs a briefly trained model's near-uniform
# probabilities make it luck (98.4 % for a correct one-epoch IR2QuickNet at
# 64 px). Chosen from measurements (docs/deployment.md, "What verification
# judges"): correct conversions, trained and random-weight, at 16-224 px,
# gave at most 2e-5 (one-epoch IR2QuickNet at 64 px, random inputs); wrong
# ones at least 0.005 (that run with one of the last binary convolution's
# 1024 filters negated, on its held-out digits; 0.019 on random inputs),
# most of them 0.1-10; 1e-3 is 50 times the first and 5 times below the
# second. A smaller threshold would near float rounding where the spread is
# small (it counts as at least CLOSE_TOLERANCE of the largest output).
MAX_RELATIVE_DIFFERENCE = 1e-3


class DeployError(Exception):
    """A deployment step failed; the message says what and how to fix it."""


# ----------------------------------------------------------------- the Keras side


def _all_layers(model) -> Iterable:
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def keras_conv_counts(model) -> Dict[str, int]:
    """Binary and full-precision convolutions of a Keras model."""
    layers = list(_all_layers(model))
    # LCE has binary kernels for QuantConv2D only (a binary depthwise conv
    # stays float in the flatbuffer).
    binary = sum(is_binary_conv(layer) and isinstance(layer, lq.layers.QuantConv2D) for layer in layers)
    convs = sum(isinstance(layer, tf.keras.layers.Conv2D) or "DepthwiseConv" in type(layer).__name__ for layer in layers)
    # The export runs a grouped float convolution as one per group.
    split = sum(layer.groups - 1 for layer in layers if _is_grouped_float_conv(layer))
    # Larq convolutions LCE has no binary kernel for (census notes): more than
    # 1 bit in the activations or kernel (DoReFa's 2-bit activations).
    multibit = sum(is_multibit_conv(layer) for layer in layers)
    counts = {"binary_convs": binary, "float_convs": convs - binary + split}
    if multibit:  # only where there are some: a fully binary model's counts stay two
        counts["quantized_not_binary"] = multibit
    return counts


def zero_padding_hazards(model) -> List[str]:
    """Binary convolutions LCE computes wrongly: zero padding (``pad_values=0``)
    on a feature map smaller than the kernel. Measured with LCE 0.16 and 3×3
    kernels: 1×1 and 2×2 maps give wrong outputs, 3×3 and larger are exact,
    and one-padding is exact at every size. Zoo ImageNet models hit this
    below 96×96 input (their last stage is then 1×1 or 2×2)."""
    hazards = []
    for layer in _all_layers(model):
        if is_binary_conv(layer) and layer.pad_values == 0.0 and layer.padding == "same":
            height, width = layer.input_shape[1:3]
            if height < layer.kernel_size[0] or width < layer.kernel_size[1]:
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
    for layer in _all_layers(model):
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


def _is_grouped_float_conv(layer) -> bool:
    # Conv2D itself only: Larq's QuantConv2D may binarize, Conv2DTranspose
    # groups differently.
    return type(layer) is tf.keras.layers.Conv2D and layer.groups > 1


def grouped_as_convolutions(model):
    """``model`` with every grouped float ``Conv2D`` a
    ``GroupsAsConvolutions`` (the export's form of it) and the same weights;
    ``model`` itself when it has none. Nested models are rewritten too."""
    if not any(_is_grouped_float_conv(layer) for layer in _all_layers(model)):
        return model

    def clone(layer):
        if _is_grouped_float_conv(layer):
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
    return tf.lite.TFLiteConverter.from_keras_model(grouped_as_convolutions(model)).convert()


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
            "Some layer uses an operation that TFLite/LCE has no kernel for; only "
            "Keras/Larq layers with TFLite builtin equivalents can be deployed."
        ) from error
    unknown = sorted({name for name, custom in _operators(flatbuffer) if custom and name not in LCE_CUSTOM_OPS})
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
        for layer in _all_layers(model)
        if type(layer).__name__ in ("Lambda", "TFOpLambda") or not type(layer).__module__.startswith(known)
    ]


# -------------------------------------------------------------------- op census


def _operators(flatbuffer: bytes) -> List[Tuple[str, bool]]:
    """(name, is_custom) of every operator, read with the TFLite schema LCE ships."""
    from larq_compute_engine.mlir.python import tflite_schema as schema

    if flatbuffer[4:8] != b"TFL3":
        raise DeployError("Not a TFLite flatbuffer (file identifier is not TFL3).")
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        if code.CustomCode():
            codes.append((code.CustomCode().decode(), True))
        else:
            # Codes above 127 live in BuiltinCode; older ones in the deprecated byte.
            number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            codes.append((builtin.get(number, f"BUILTIN_{number}"), False))
    operators = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        operators.extend(codes[subgraph.Operators(i).OpcodeIndex()] for i in range(subgraph.OperatorsLength()))
    return operators


def op_census(flatbuffer: bytes) -> Dict[str, int]:
    """How many operators of each kind the flatbuffer holds, most frequent first."""
    return dict(collections.Counter(name for name, _ in _operators(flatbuffer)).most_common())


def check_census(census: Dict[str, int], keras_counts: Dict[str, int], target: str = "arm") -> Dict:
    """Compares the op census with the Keras model's convolutions.

    ``arm``: every binary convolution must be an ``LceBconv2d``; a float
    ``CONV_2D`` standing in for one would show as one float convolution too
    many (the converter may fold a full-precision convolution away, never add
    one). ``xcore``: LCE leaves binary convolutions to the xcore tool chain as
    ``CONV_2D`` ops on a binarized input (``LceQuantize`` → ``LceDequantize``),
    so each shows as one float convolution and one ``LceDequantize``.
    """
    binary, full = keras_counts["binary_convs"], keras_counts["float_convs"]
    bconv = census.get(BCONV_OP, 0)
    float_convs = sum(census.get(op, 0) for op in FLOAT_CONV_OPS)
    problems = []
    if target == "xcore":
        if float_convs > full + binary or census.get("LceDequantize", 0) < binary:
            problems.append(
                f"{float_convs} convolution ops and {census.get('LceDequantize', 0)} LceDequantize for {binary} "
                f"binary and {full} full-precision convolutions: not every binary convolution was binarized"
            )
    else:
        if bconv != binary:
            problems.append(f"{bconv} {BCONV_OP} ops for {binary} binary convolutions in the Keras model")
        if float_convs > full:
            problems.append(
                f"{float_convs} float convolution ops for {full} full-precision convolutions in the Keras "
                "model: a binary convolution was converted to a float one"
            )
    notes = []
    if keras_counts.get("quantized_not_binary"):
        notes.append(
            f"{keras_counts['quantized_not_binary']} quantized convolution(s) are not binary (more than 1 bit in "
            "their activations or weights, e.g. DoReFa's 2-bit activations, or depthwise): LCE has no binary "
            "kernel for them, so they run as float CONV_2D/DEPTHWISE_CONV_2D ops with their quantization "
            "computed in float (the model's deploy note: `python -m zoo list`)"
        )
    return {
        "notes": notes,
        "ops": census,
        "total_ops": sum(census.values()),
        "lce_bconv2d": bconv,
        "binary_convs_keras": binary,
        "float_conv_ops": float_convs,
        "float_convs_keras": full,
        "binarize_ops": {op: census.get(op, 0) for op in BINARIZE_OPS},
        "int8_ops": {op: census.get(op, 0) for op in INT8_OPS},
        "problems": problems,
        "ok": not problems,
    }


# ------------------------------------------------------------------------ parity


def _interpreter(flatbuffer: bytes, num_threads: int = 1, kernel: str = "indirect_bgemm"):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(flatbuffer, num_threads=num_threads, **KERNELS[kernel])


def _to_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def with_batch_size(flatbuffer: bytes, batch_size: int) -> bytes:
    """A copy of the flatbuffer whose inputs take ``batch_size`` images.

    LCE's Python interpreter cannot resize inputs, and the converter fixes
    the batch at 1. Only the inputs' first dimension is rewritten here (in
    place, in a copy of the bytes); TFLite recomputes every other tensor's
    shape when it allocates them.
    """
    import struct

    from larq_compute_engine.mlir.python import tflite_schema as schema

    buffer = bytearray(flatbuffer)
    model = schema.Model.GetRootAs(buffer, 0)
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for i in range(subgraph.InputsLength()):
            tensor = subgraph.Tensors(subgraph.Inputs(i))
            shape = tensor._tab.Offset(4)  # Tensor.shape, the table's first field
            if not shape or tensor.ShapeLength() < 1:
                raise DeployError("The flatbuffer's input has no shape to batch.")
            struct.pack_into("<i", buffer, tensor._tab.Vector(shape), batch_size)
    return bytes(buffer)


class FlatbufferRunner:
    """Runs a flatbuffer in LCE's interpreter on any number of inputs, in
    batches, (de)quantizing int8 input/output.

    Args:
        flatbuffer: the ``.tflite`` bytes.
        batch_size: images per interpreter call. Falls back to 1 when the
            graph cannot be batched (an op that fixes the batch): checked on
            the first call against a batch-1 run of the first image.
        num_threads: interpreter threads.
        kernel: one of ``KERNELS``.
    """

    def __init__(self, flatbuffer: bytes, *, batch_size: int = 1, num_threads: int = 1,
                 kernel: str = "indirect_bgemm"):
        self.single = _interpreter(flatbuffer, num_threads=num_threads, kernel=kernel)
        self.batched, self.batch_size = self.single, 1
        if batch_size > 1:
            try:
                self.batched = _interpreter(with_batch_size(flatbuffer, batch_size), num_threads=num_threads,
                                            kernel=kernel)
                self.batch_size = batch_size
            except (RuntimeError, ValueError, DeployError):
                pass  # stays at batch 1
        self._checked = self.batch_size == 1

    def _call(self, interpreter, x: np.ndarray) -> np.ndarray:
        if interpreter.input_types[0] == np.int8:
            x = _to_int8(x, interpreter.input_scales[0], interpreter.input_zero_points[0])
        y = interpreter.interpreter.predict([x])[0]
        if interpreter.output_types[0] == np.int8:
            y = (y.astype(np.float32) - interpreter.output_zero_points[0]) * interpreter.output_scales[0]
        return y

    def _batch(self, x: np.ndarray) -> np.ndarray:
        count = len(x)
        if count < self.batch_size:  # the last, short batch: pad, then drop the padding
            x = np.concatenate([x, np.zeros((self.batch_size - count, *x.shape[1:]), x.dtype)])
        return self._call(self.batched, x)[:count]

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Float outputs for ``inputs`` (N, H, W, C)."""
        x = np.asarray(inputs, np.float32)
        if self.batch_size == 1:
            return np.concatenate([self._call(self.single, x[i : i + 1]) for i in range(len(x))])
        first = self._batch(x[: self.batch_size])
        if not self._checked:
            alone = self._call(self.single, x[:1])
            tolerance = CLOSE_TOLERANCE * max(1.0, float(np.abs(alone).max()))
            self._checked = True
            if first.shape[1:] != alone.shape[1:] or np.abs(first[:1] - alone).max() > tolerance:
                self.batched, self.batch_size = self.single, 1  # batching changed the result: do not batch
                return self(x)
        rest = [self._batch(x[i : i + self.batch_size]) for i in range(self.batch_size, len(x), self.batch_size)]
        return np.concatenate([first, *rest])


def run_flatbuffer(flatbuffer: bytes, inputs: np.ndarray, *, kernel: str = "indirect_bgemm", batch_size: int = 1,
                   num_threads: int = 1) -> np.ndarray:
    """Float outputs of the flatbuffer, (de)quantizing int8 input/output."""
    return FlatbufferRunner(flatbuffer, batch_size=batch_size, num_threads=num_threads, kernel=kernel)(inputs)


def random_inputs(input_shape: Sequence[int], count: int, seed: int = 0) -> np.ndarray:
    """Standard-normal images: roughly what mean/std-normalized images look like."""
    return np.random.default_rng(seed).standard_normal((count, *input_shape)).astype(np.float32)


def parity(model, flatbuffer: bytes, inputs: np.ndarray, labels: Optional[np.ndarray] = None) -> Dict:
    """Top-1 agreement and largest absolute difference of Keras and LCE
    outputs; agreement also on the inputs that are not near-ties (the Keras
    top-1 leads the runner-up by more than ``NEAR_TIE`` of the output scale),
    the only ones whose top-1 a correct conversion cannot change."""
    expected = model.predict(inputs, batch_size=32, verbose=0)
    actual = run_flatbuffer(flatbuffer, inputs)
    if actual.shape != expected.shape:
        raise DeployError(f"The flatbuffer outputs shape {actual.shape}, Keras {expected.shape}.")
    # One output vector per input: (N, classes) as it is; a model that outputs
    # feature maps (a backbone, a test model) is judged on its whole map.
    flat_expected, flat_actual = expected.reshape(len(inputs), -1), actual.reshape(len(inputs), -1)
    keras_top1, lce_top1 = flat_expected.argmax(1), flat_actual.argmax(1)
    difference = np.abs(flat_actual - flat_expected).max(axis=1)
    scale = max(1.0, float(np.abs(expected).max()))
    tolerance = CLOSE_TOLERANCE * scale
    agree = keras_top1 == lce_top1
    ordered = np.sort(flat_expected, axis=1)
    near = ordered[:, -1] - ordered[:, -2] <= NEAR_TIE * scale
    result = {
        "samples": int(len(inputs)),
        "top1_agreement": float(np.mean(agree)),
        "close_fraction": float(np.mean(difference <= tolerance)),
        "max_abs_diff": float(np.abs(actual - expected).max()),
        "max_abs_output": float(np.abs(expected).max()),
        # Near-ties: reported, not judged.
        "near_tie_margin": NEAR_TIE * scale,
        "near_ties": int(near.sum()),
        "near_tie_disagreements": int((near & ~agree).sum()),
        "judged": int((~near).sum()),
        "judged_agreement": float(np.mean(agree[~near])) if (~near).any() else None,
    }
    result.update(output_difference(flat_expected, flat_actual))
    if labels is not None:
        result["keras_accuracy"] = float(np.mean(keras_top1 == labels))
        result["lce_accuracy"] = float(np.mean(lce_top1 == labels))
    return result


def output_difference(expected: np.ndarray, actual: np.ndarray) -> Dict:
    """How far LCE's outputs are from Keras', against how far Keras' own
    outputs vary from input to input: the figures a correct conversion
    guarantees whatever the model has learned.

    ``expected``, ``actual``: (inputs, outputs). The spread is the standard
    deviation of each Keras output across the inputs, averaged over the
    outputs. Each input's difference is its mean |keras - lce| over the
    outputs, divided by the spread. A model trained for one epoch has
    near-uniform probabilities, whose top-1 on noise is luck, but a spread
    like any other: the ratio is the same for it as for a trained model. A
    correct conversion leaves most inputs equal up to float rounding; a few
    move further, where an activation within rounding of zero binarized to
    the other sign (``DEFAULT_MIN_AGREEMENT``), which is why the median over
    the inputs is judged (``MAX_RELATIVE_DIFFERENCE``), not the mean or the
    largest. A conversion that computes something else moves every input.
    """
    spread = float(expected.std(axis=0).mean()) if len(expected) > 1 else 0.0
    difference = np.abs(actual - expected)
    # Outputs that barely depend on the input (or one input): the spread
    # would sit near float rounding itself; a thousandth of the largest
    # output is the least it counts as.
    floor = CLOSE_TOLERANCE * float(np.abs(expected).max())
    scale = max(spread, floor, float(np.finfo(np.float32).tiny))
    per_input = difference.mean(axis=1) / scale
    return {
        "output_spread": spread,
        "relative_median_diff": float(np.median(per_input)),
        "relative_mean_diff": float(per_input.mean()),
        "relative_max_diff": float(difference.max() / scale),
    }


def difference_failure(name: str, figures: Dict, threshold: float = MAX_RELATIVE_DIFFERENCE) -> Optional[str]:
    """Why the outputs on ``name`` inputs differ more than a correct
    conversion's do (``MAX_RELATIVE_DIFFERENCE``), or None."""
    ratio = figures.get("relative_median_diff")
    if ratio is None or ratio <= threshold:
        return None
    return (f"on the median of the {figures['samples']} {name} inputs the .tflite's outputs differ from Keras' by "
            f"{ratio:.3g} of the outputs' spread across inputs (> {threshold:g}; correct conversions stay near float "
            "rounding, 1e-5): the file computes something else, check the ops above")


def agreement_failure(name: str, figures: Dict, threshold: float) -> Optional[str]:
    """Why the parity ``figures`` on ``name`` inputs fail ``threshold``, or None.

    Judged on the inputs that are not near-ties when they are at least half
    of them; otherwise (a model with flat outputs) on all inputs, and the
    message says so."""
    judged = figures.get("judged", figures["samples"])
    robust = figures.get("judged_agreement") is not None and 2 * judged >= figures["samples"]
    agreement = figures["judged_agreement"] if robust else figures["top1_agreement"]
    if agreement >= threshold:
        return None
    which = (f"{judged} of {figures['samples']} {name} inputs whose Keras top-1 leads by more than "
             f"{figures['near_tie_margin']:.3g}" if robust else
             f"all {figures['samples']} {name} inputs ({figures.get('near_ties', 0)} near-ties: too many to leave out)")
    return (f"top-1 agreement {100 * agreement:.1f} % < {100 * threshold:.1f} % on {which}; a correct conversion "
            "fails this only on near-ties, so check the ops above, or pass --min-agreement to accept a lower value")


# ----------------------------------------------------------------------- latency


def measure_latency(
    flatbuffer: bytes,
    *,
    kernels: Sequence[str] = ("default", "indirect_bgemm"),
    threads: Sequence[int] = (1, 2),
    runs: int = 20,
    warmup: int = 3,
) -> List[Dict]:
    """Median host latency (ms) of one batch-1 inference per kernel and thread count."""
    results = []
    for kernel in kernels:
        for num_threads in threads:
            interpreter = _interpreter(flatbuffer, num_threads=num_threads, kernel=kernel)
            shape = interpreter.input_shapes[0]
            x = np.zeros(shape, dtype=interpreter.input_types[0])
            # Call the wrapped interpreter directly: InterpreterBase.predict
            # adds batching and concatenation we do not want to time.
            for _ in range(warmup):
                interpreter.interpreter.predict([x])
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                interpreter.interpreter.predict([x])
                times.append((time.perf_counter() - start) * 1000.0)
            results.append(
                {
                    "kernel": kernel,
                    "threads": num_threads,
                    "median_ms": statistics.median(times),
                    "min_ms": min(times),
                    "runs": runs,
                }
            )
    return results


# ------------------------------------------------------------------------- files


def check_writable(path: str) -> None:
    """Fails early, before a slow conversion, when ``path`` cannot be written."""
    try:
        files.check_writable(path, option="--output")
    except files.OutputError as error:
        raise DeployError(str(error)) from error
