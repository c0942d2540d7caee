"""A tiny tensorflow-datasets dataset stored in several files
(tests/test_sharded_reading.py), and a ``python -m train`` that records which
examples each worker reads.

Every example's encoded image is different (random pixels), so its digest
(``example_id``) names it; the label (``id % CLASSES``) shifts the pixels, so
that a few steps learn something and validation accuracy is not 0.

``python -c "import sharded_ids; sharded_ids.train()" FLAGS`` (with this
folder on PYTHONPATH) registers the dataset, then makes every tfds pipeline
append the ids of the examples it reads to
``$IR2NET_READ_LOG/<split>-s<workers>-w<worker>-e<epoch>.txt`` (``e-`` for
evaluation) before running ``python -m train FLAGS``.
"""

import hashlib

import os
import sys

import numpy as np

TRAIN, EVAL, FILES, CLASSES = 100, 40, 4, 10
NAME = "sharded_ids"


def _builder_class():
    import tensorflow_datasets as tfds

    class ShardedIds(tfds.core.GeneratorBasedBuilder):
        """8×8 images; example ``i`` (train 0–99, validation 100–139) has label ``i % CLASSES``."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(num_classes=CLASSES),
                }),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, TRAIN),
                    "validation": self._generate_examples(TRAIN, TRAIN + EVAL)}

        def _generate_examples(self, start, stop):
            rng = np.random.default_rng(0)
            for i in range(start, stop):
                label = i % CLASSES
                image = (rng.integers(0, 56, (8, 8, 3)) + 20 * label).astype(np.uint8)
                yield i, {"image": image, "label": label}

    return ShardedIds


_CLASS = None


def example_id(encoded: bytes) -> str:
    """An example's name: the digest of its encoded image."""
    return hashlib.sha256(encoded).hexdigest()[:16]


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
        name = f"{split.split('[')[0]}-s{shards}-w{shard}-e{'-' if epoch is None else epoch}.txt"
        path = os.path.join(folder, name)

        def write(image, label):
            with open(path, "a") as f:
                f.write(example_id(image) + "\n")
            return label

        return ds.map(lambda image, label: (
            image, tf.ensure_shape(tf.numpy_function(write, [image, label], label.dtype, stateful=True), [])))

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
