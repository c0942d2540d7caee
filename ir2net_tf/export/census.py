"""The flatbuffer's op census: how many operators of each kind a ``.tflite``
holds, checked against the Keras model's convolutions (every binary
convolution an ``LceBconv2d``). Reading a flatbuffer needs no TensorFlow.
"""

import collections
from typing import Dict, List, Tuple

from ir2net_tf.export.errors import DeployError

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


def keras_conv_counts(model) -> Dict[str, int]:
    """Binary and full-precision convolutions of a Keras model."""
    import tensorflow as tf
    import larq as lq

    from ir2net_tf.nn.complexity import is_binary_conv, is_multibit_conv
    from ir2net_tf.export.convert import all_layers, is_grouped_float_conv

    layers = list(all_layers(model))
    # LCE has binary kernels for QuantConv2D only (a binary depthwise conv
    # stays float in the flatbuffer).
    binary = sum(is_binary_conv(layer) and isinstance(layer, lq.layers.QuantConv2D) for layer in layers)
    convs = sum(isinstance(layer, tf.keras.layers.Conv2D) or "DepthwiseConv" in type(layer).__name__ for layer in layers)
    # The export runs a grouped float convolution as one per group.
    split = sum(layer.groups - 1 for layer in layers if is_grouped_float_conv(layer))
    # Larq convolutions LCE has no binary kernel for (census notes): more than
    # 1 bit in the activations or kernel (DoReFa's 2-bit activations).
    multibit = sum(is_multibit_conv(layer) for layer in layers)
    counts = {"binary_convs": binary, "float_convs": convs - binary + split}
    if multibit:  # only where there are some: a fully binary model's counts stay two
        counts["quantized_not_binary"] = multibit
    return counts


def operators(flatbuffer: bytes) -> List[Tuple[str, bool]]:
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
    return dict(collections.Counter(name for name, _ in operators(flatbuffer)).most_common())


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
