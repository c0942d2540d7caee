"""Complexity accounting as BNN papers report it.

- BOPs: multiply-accumulates of binary convolutions (1-bit inputs and weights).
- FP MACs: multiply-accumulates of everything else that multiplies (full-
  precision convolutions, depthwise and grouped ones, dense layers).
- FLOPs = BOPs / 64 + FP MACs (Bi-Real Net, ReActNet and IR²Net count a MAC
  as one FLOP and 64 binary operations as one, for 64-bit popcount).
- Parameters: binary (1-bit kernels) and full precision (all other trainable
  weights).
- Deployed size: binary kernels at 1 bit, every other weight at 32 bits, with
  batch normalization folded to a scale and an offset per channel. This is
  what ``larq.models.summary`` calls the model size.

A layer counts as binary when both its input and kernel quantizers are 1-bit,
the same rule Larq uses: a step-1 model (real weights, binary activations)
therefore has no BOPs.
"""

import dataclasses
from typing import List

import larq as lq
import numpy as np
import tensorflow as tf

_CONV_TYPES = (tf.keras.layers.Conv2D, tf.keras.layers.DepthwiseConv2D, tf.keras.layers.Dense)


@dataclasses.dataclass(frozen=True)
class LayerComplexity:
    name: str
    binary: bool
    macs: int
    binary_params: int
    fp_params: int
    deployed_bits: int


@dataclasses.dataclass(frozen=True)
class Complexity:
    """Totals for a model; ``layers`` has the per-layer figures."""

    bops: int
    fp_macs: int
    binary_params: int
    fp_params: int
    deployed_bytes: int
    layers: List[LayerComplexity]

    @property
    def flops(self) -> float:
        return self.bops / 64 + self.fp_macs

    @property
    def params(self) -> int:
        return self.binary_params + self.fp_params

    def as_dict(self) -> dict:
        return {
            "bops": self.bops,
            "fp_macs": self.fp_macs,
            "flops": self.flops,
            "binary_params": self.binary_params,
            "fp_params": self.fp_params,
            "params": self.params,
            "deployed_bytes": self.deployed_bytes,
        }


def _precision(quantizer) -> int:
    return getattr(quantizer, "precision", 32) if quantizer is not None else 32


def is_binary_conv(layer) -> bool:
    """A Larq convolution with 1-bit inputs and 1-bit weights."""
    return (
        isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDepthwiseConv2D))
        and _precision(getattr(layer, "input_quantizer", None)) == 1
        and _precision(getattr(layer, "kernel_quantizer", None)) == 1
    )


def is_multibit_conv(layer) -> bool:
    """A Larq convolution with a quantizer of more than one bit (DoReFa's
    2-bit activations): LCE has no binary kernel for it. A missing quantizer
    (a float input, as in a first layer) is not one."""
    quantizers = (getattr(layer, "input_quantizer", None), getattr(layer, "kernel_quantizer", None))
    return isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDepthwiseConv2D)) and any(
        q is not None and _precision(q) > 1 for q in quantizers)


def _size(weight) -> int:
    return int(np.prod(weight.shape))


def _macs(layer) -> int:
    """Kernel size × output pixels: the kernel of a grouped or depthwise conv
    already holds only the connections it computes."""
    if not isinstance(layer, _CONV_TYPES):
        return 0
    shape = layer.output.shape
    pixels = int(np.prod(shape[1:-1])) if shape.rank > 2 else 1
    kernel = layer.depthwise_kernel if isinstance(layer, tf.keras.layers.DepthwiseConv2D) else layer.kernel
    return _size(kernel) * pixels


def _deployed_weights(layer) -> list:
    """The weights that exist after conversion: batch norm folds into two
    per-channel vectors, so its gamma and beta are not counted twice."""
    weights = list(layer.weights)
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        weights = [w for w in weights if "moving_" in w.name]
    return weights


def layer_complexity(layer) -> LayerComplexity:
    binary = is_binary_conv(layer)
    binary_kernel = layer.kernel if binary else None
    binary_params = _size(binary_kernel) if binary else 0
    fp_params = sum(_size(w) for w in layer.trainable_weights if w is not binary_kernel)
    deployed_bits = sum((1 if w is binary_kernel else 32) * _size(w) for w in _deployed_weights(layer))
    return LayerComplexity(layer.name, binary, _macs(layer), binary_params, fp_params, deployed_bits)


def _flat_layers(model):
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def complexity(model: tf.keras.Model) -> Complexity:
    """BOPs, FP MACs, FLOPs, parameters and deployed size of ``model``."""
    layers = [layer_complexity(layer) for layer in _flat_layers(model)]
    return Complexity(
        bops=sum(l.macs for l in layers if l.binary),
        fp_macs=sum(l.macs for l in layers if not l.binary),
        binary_params=sum(l.binary_params for l in layers),
        fp_params=sum(l.fp_params for l in layers),
        deployed_bytes=(sum(l.deployed_bits for l in layers) + 7) // 8,
        layers=layers,
    )
