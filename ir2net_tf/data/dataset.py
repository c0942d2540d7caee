"""The ``Dataset`` object: per-epoch training pipelines whose order and
augmentation depend only on (seed, epoch), so that a run resumed in the
middle of an epoch sees exactly the batches it had not yet consumed, and a
fixed evaluation pipeline. Sources (``sources/``) build one."""

import dataclasses
from typing import Callable, Optional

import tensorflow as tf

from ir2net_tf.data.augment import preprocessors

AUTOTUNE = tf.data.AUTOTUNE
# The held-out splits a source looks for (tfds splits, image-folder splits), in this order.
EVAL_SPLITS = ("validation", "test")


@dataclasses.dataclass
class Dataset:
    """A dataset ready for training.

    ``train_source`` / ``eval_source`` yield ``(image, label)`` with images
    undecoded (bytes), uint8, or file paths that ``read`` reads; ``train(epoch, batch_size, skip_batches)``
    and ``evaluation(batch_size)`` build the pipelines.
    """

    name: str
    num_classes: int
    train_examples: int
    eval_examples: int
    train_source: Callable[[int], tf.data.Dataset]  # epoch → shuffled source
    eval_source: Callable[[], tf.data.Dataset]
    augment: str
    image_size: int
    seed: int = 0
    # Sources that yield file paths (image folders) name how an example is
    # read: it is read where it is decoded, after the batches a resumed run
    # skips and the slices other workers take are dropped.
    read: Optional[Callable] = None

    def steps_per_epoch(self, batch_size: int) -> int:
        steps = self.train_examples // batch_size
        if steps < 1:
            raise ValueError(
                f"The {self.name} training split has {self.train_examples} examples, fewer "
                f"than one batch of {batch_size}; lower --batch_size."
            )
        return steps

    def train(self, epoch: int, batch_size: int, skip_batches: int = 0, *, shards: int = 1, shard: int = 0,
              local_batch_size: Optional[int] = None) -> tf.data.Dataset:
        """Epoch ``epoch``'s batches from batch ``skip_batches`` on.

        The order and augmentation are functions of (seed, epoch, position), so
        the skipped batches are exactly the ones an interrupted run consumed;
        they are skipped before decoding, which costs almost nothing.

        Args:
            epoch: the epoch (with the seed, it fixes order and augmentation).
            batch_size: the global batch: one training step of the whole
                cluster.
            skip_batches: global batches already consumed this epoch.
            shards: workers sharing the epoch; ``shard``: this worker's index.
                Global batch ``k`` is examples ``[k·B, (k+1)·B)`` of the
                shuffled stream, and worker ``i`` takes its ``i``-th slice of
                ``B / shards`` examples: together the workers see each
                example once, in the order one process would.
            local_batch_size: the batches this pipeline yields (a slice split
                between a worker's replicas); default: the slice.
        """
        if batch_size % shards:
            raise ValueError(f"--batch_size {batch_size} does not split evenly over {shards} workers; "
                             f"choose a multiple of {shards}.")
        train_fn, _ = preprocessors(self.augment, self.image_size)
        base_seed = tf.constant([self.seed, epoch], tf.int64)

        read = self.read or (lambda image: image)

        def prepare(index, example):
            image, label = example
            seed = tf.random.experimental.stateless_fold_in(base_seed, index)
            return train_fn(read(image), seed), tf.cast(label, tf.int32)

        steps = self.steps_per_epoch(batch_size)
        ds = self.train_source(epoch).take(steps * batch_size).enumerate()
        ds = ds.skip(skip_batches * batch_size)
        if shards > 1:
            # Every worker reads the whole stream (undecoded) and keeps its slices.
            part = batch_size // shards
            ds = ds.filter(lambda index, _: tf.equal(index % batch_size // part, shard))
        ds = ds.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
        return ds.batch(local_batch_size or batch_size // shards, drop_remainder=True).prefetch(AUTOTUNE)

    def evaluation(self, batch_size: int) -> tf.data.Dataset:
        _, eval_fn = preprocessors(self.augment, self.image_size)

        read = self.read or (lambda image: image)

        def prepare(image, label):
            return eval_fn(read(image)), tf.cast(label, tf.int32)

        ds = self.eval_source().map(prepare, num_parallel_calls=AUTOTUNE)
        return ds.batch(batch_size).prefetch(AUTOTUNE)


def shuffled(ds: tf.data.Dataset, buffer: int, seed: int, epoch: int) -> tf.data.Dataset:
    """``ds`` in epoch ``epoch``'s order: a function of (seed, epoch) only."""
    return ds.shuffle(buffer, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)

