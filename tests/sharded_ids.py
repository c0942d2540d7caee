"""A tiny tensorflow-datasets dataset stored in several files, whose labels
are the examples' ids (tests/test_sharded_reading.py), and a ``python -m
train`` that records which examples each worker reads.

``python -c "import sharded_ids; sharded_ids.train()" FLAGS`` (with this
folder on PYTHONPATH) registers the dataset, then makes every tfds pipeline
append the ids it reads to ``$IR2NET_READ_LOG/<split>-w<worker>-e<epoch>.txt``
(``e-`` for evaluation) before running ``python -m train FLAGS``.
"""

import os
import sys

import numpy as np

TRAIN, EVAL, FILES = 100, 40, 4
NAME = "sharded_ids"


def _builder_class():
    import tensorflow_datasets as tfds

    class ShardedIds(tfds.core.GeneratorBasedBuilder):
        """8×8 images; example ``i`` has label ``i`` (train 0–99, validation 100–139)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(num_classes=TRAIN + EVAL),
                }),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, TRAIN),
                    "validation": self._generate_examples(TRAIN, TRAIN + EVAL)}

        def _generate_examples(self, start, stop):
            rng = np.random.default_rng(0)
            for i in range(start, stop):
                image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                yield i, {"image": image, "label": i}

    return ShardedIds


_CLASS = None


def register():
    """Registers the builder (once per process) and returns its class."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _builder_class()
    return _CLASS


def prepare(data_dir: str) -> None:
    """The dataset prepared in ``data_dir``: ``FILES`` files per split."""
    import tensorflow_datasets as tfds

    builder = register()(data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=FILES))


def _record_reads(folder: str) -> None:
    import tensorflow as tf

    from ir2net_tf.data.sources import tfds as source

    original = source._tfds_source

    def recording(builder, split, *, seed, epoch=None, shards=1, shard=0):
        ds = original(builder, split, seed=seed, epoch=epoch, shards=shards, shard=shard)
        path = os.path.join(folder, f"{split.split('[')[0]}-w{shard}-e{'-' if epoch is None else epoch}.txt")

        def write(label):
            with open(path, "a") as f:
                f.write(f"{int(label)}\n")
            return label

        return ds.map(lambda image, label: (
            image, tf.ensure_shape(tf.numpy_function(write, [label], label.dtype, stateful=True), [])))

    source._tfds_source = recording


def train() -> None:
    """``python -m train`` with the dataset registered (and reads recorded
    when ``IR2NET_READ_LOG`` names a folder)."""
    import runpy

    import ir2net_tf  # noqa: F401  (Keras 2 before TensorFlow)

    register()
    if os.environ.get("IR2NET_READ_LOG"):
        _record_reads(os.environ["IR2NET_READ_LOG"])
    sys.argv = ["train", *sys.argv[1:]]
    runpy.run_module("train", run_name="__main__", alter_sys=True)
