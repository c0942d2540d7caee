"""larq-zoo networks built without Keras ``Lambda`` layers, so that a model
on them saves as ``.keras`` and loads back (``tf.keras.models.load_model``
refuses a Lambda holding a Python ``lambda``, and larq-zoo writes three
that way: MeliusNet's channel split and concatenation and its improvement
block's merge, and Real-to-Binary Net's named block outputs).

Each factory subclasses larq-zoo's own and rewrites only those methods,
with registered layers computing the same thing (``ir2net_tf.nn.layers``:
``ChannelSplit``, ``FrontPaddedAdd``; Keras' ``Concatenate`` and
``Identity``). Layer names, the order of the weights (larq-zoo's ImageNet
files load by it) and the outputs are unchanged: tests/test_larq_zoo_backbones.py.
"""

import tensorflow as tf
from larq_zoo.literature.meliusnet import MeliusNet22Factory
from larq_zoo.literature.real_to_bin_nets import RealToBinNetBNNFactory
from zookeeper import factory

from ir2net_tf.nn.layers import ChannelSplit, FrontPaddedAdd


@factory
class MeliusNet22(MeliusNet22Factory):
    def group_conv(self, x, filters, kernel, groups, name=None):
        if filters % groups or x.shape[-1] % groups:
            raise ValueError(f"{name}: {x.shape[-1]} → {filters} channels do not split into {groups} groups.")
        parts = ChannelSplit(groups, name=f"{name}_split")(x)
        parts = [
            tf.keras.layers.Conv2D(filters // groups, kernel, padding="same", use_bias=False,
                                   kernel_initializer=self.kernel_initializer, name=f"{name}_conv{i}")(part)
            for i, part in enumerate(parts)
        ]
        return tf.keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(parts)

    def dense_block(self, x, name=None):
        w = self.norm(x, name=f"{name}_bn")
        w = self.quant_conv(w, 64, 3, name=f"{name}_binconv")
        return tf.keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([x, w])

    def improvement_block(self, x, name=None):
        w = self.norm(x, name=f"{name}_bn")
        w = self.quant_conv(w, 64, 3, name=f"{name}_binconv")
        return FrontPaddedAdd(name=f"{name}_merge")([x, w])


@factory
class RealToBinaryNet(RealToBinNetBNNFactory):
    def block(self, x, downsample=False, name=""):
        x = self.half_binary_block(x, downsample=downsample, name=f"{name}a")
        x = self.half_binary_block(x, downsample=False, name=f"{name}b")
        # Named for the attention matching of Martinez et al. (Section 4.2).
        return tf.keras.layers.Identity(name=f"{name}_out")(x)


FACTORIES = {"MeliusNet22": MeliusNet22, "RealToBinaryNet": RealToBinaryNet}


def build(network: str, input_shape, weights=None):
    """larq-zoo's ``include_top=False`` model of ``network``, Lambda-free."""
    return FACTORIES[network](input_shape=input_shape, input_tensor=None, weights=weights, include_top=False,
                              num_classes=1000).build()
