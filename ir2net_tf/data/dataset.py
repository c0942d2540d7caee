"""The ``Dataset`` object: per-epoch training pipelines whose order and
augmentation depend only on (seed, epoch), so that a run resumed in the
middle of an epoch sees exactly the batches it had not yet consumed, and a
fixed evaluation pipeline. Sources (``sources/``) build one."""

import dataclasses
from typing import Callable, List, Optional, Tuple

import tensorflow as tf

from ir2net_tf.data.augment import preprocessors

AUTOTUNE = tf.data.AUTOTUNE
# The held-out splits a source looks for (tfds splits, image-folder splits), in this order.
EVAL_SPLITS = ("validation", "test")


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """A split stored in files that the workers of a cluster share out.

    ``lengths``: each file's examples (of a sliced split, the slice's part of
    it), in the split's order. ``read(shards, shard, epoch)``: the examples of
    worker ``shard``'s files (``files(shards, shard)``), undecoded; in epoch
    ``epoch``'s order, a function of (seed, epoch, shards, shard), or in file
    order when ``epoch`` is None (evaluation).
    """

    split: str
    lengths: Tuple[int, ...]
    read: Callable[[int, int, Optional[int]], tf.data.Dataset]

    def shardable(self, shards: int) -> bool:
        """Whether ``shards`` workers each get at least one file."""
        return 1 < shards <= len(self.lengths)

    def files(self, shards: int, shard: int) -> List[int]:
        """The files worker ``shard`` of ``shards`` reads: every ``shards``-th
        from the ``shard``-th (what ``tf.data.Dataset.shard`` and tfds'
        ``ReadConfig(input_context=…)`` take)."""
        return list(range(shard, len(self.lengths), shards))

    def examples(self, shards: int, shard: int) -> int:
        return sum(self.lengths[i] for i in self.files(shards, shard))


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
    # Splits stored in several files (tensorflow-datasets): on a cluster with
    # no more workers than files, each worker reads only its own files.
    train_files: Optional[SplitFiles] = None
    eval_files: Optional[SplitFiles] = None

    def file_sharded(self, shards: int, evaluation: bool = False) -> bool:
        """Whether ``shards`` workers each read their own files of the
        training (or held-out) split, rather than each reading the whole
        split and keeping its share of the examples."""
        files = self.eval_files if evaluation else self.train_files
        return files is not None and files.shardable(shards)

    def reading_order(self, shards: int) -> int:
        """What a training epoch's order depends on besides (seed, epoch): the
        worker count when each worker reads its own files, else 1 (every
        worker count sees the one-process order)."""
        return shards if self.file_sharded(shards) else 1

    def steps_per_epoch(self, batch_size: int, shards: int = 1) -> int:
        """The training split's global batches; with file sharding, as many as
        the worker with the fewest examples fills (every worker runs the
        same steps: they are collective), the rest of each worker's files
        being dropped at the epoch's end."""
        if self.file_sharded(shards):
            part = self._part(batch_size, shards)
            fewest = min(self.train_files.examples(shards, i) for i in range(shards))
            steps = fewest // part
            if steps < 1:
                raise ValueError(
                    f"On {shards} workers each reading its own files of the {self.name} training split, one "
                    f"has only {fewest} examples, fewer than its {part} of a batch of {batch_size}; lower "
                    "--batch_size."
                )
            return steps
        steps = self.train_examples // batch_size
        if steps < 1:
            raise ValueError(
                f"The {self.name} training split has {self.train_examples} examples, fewer "
                f"than one batch of {batch_size}; lower --batch_size."
            )
        return steps

    @staticmethod
    def _part(batch_size: int, shards: int) -> int:
        if batch_size % shards:
            raise ValueError(f"--batch_size {batch_size} does not split evenly over {shards} workers; "
                             f"choose a multiple of {shards}.")
        return batch_size // shards

    def describe_reading(self, shards: int, batch_size: int) -> List[str]:
        """How ``shards`` workers read the splits (a line each; for the log)."""
        lines = []
        for what, files, evaluation in (("training", self.train_files, False),
                                        ("held-out", self.eval_files, True)):
            if self.file_sharded(shards, evaluation):
                counts = [files.examples(shards, i) for i in range(shards)]
                line = (f"The {what} split {files.split!r} of {self.name}: {len(files.lengths)} files shared out "
                        f"over {shards} workers (examples per worker {counts}); each worker reads only its own")
                if evaluation:
                    line += (f", in {self.evaluation_steps(batch_size, shards)} steps (a worker with fewer "
                             "examples fills its last batches with blank ones, which count nowhere)")
                else:
                    steps = self.steps_per_epoch(batch_size, shards)
                    dropped = sum(counts) - steps * batch_size
                    line += (f"; an epoch is {steps} steps, leaving out {dropped} examples at the workers' "
                             "ends (others each epoch)")
            else:
                why = (f"has {len(files.lengths)} file{'s' if len(files.lengths) != 1 else ''}, fewer than the "
                       f"{shards} workers" if files is not None else "is not stored in files")
                line = (f"The {what} split of {self.name} {why}: every worker reads the whole split and keeps "
                        "its share of the examples")
            lines.append(line + ".")
        return lines

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
                When the training split's files can be shared out
                (``file_sharded(shards)``), worker ``i`` reads only its own
                files and takes ``B / shards`` examples of them a step
                (``_train_own_files``). Otherwise global batch ``k`` is
                examples ``[k·B, (k+1)·B)`` of the shuffled stream, and worker
                ``i`` takes its ``i``-th slice of ``B / shards`` examples:
                together the workers see each example once, in the order one
                process would.
            local_batch_size: the batches this pipeline yields (a slice split
                between a worker's replicas); default: the slice.
        """
        self._part(batch_size, shards)
        if self.file_sharded(shards):
            return self._train_own_files(epoch, batch_size, skip_batches, shards, shard, local_batch_size)
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

    def _train_own_files(self, epoch, batch_size, skip_batches, shards, shard, local_batch_size):
        """``train`` of worker ``shard`` of ``shards`` reading only its own
        files: the worker's stream (in an order of seed, epoch, shards and
        shard) is cut into its ``B / shards`` parts of the global batches;
        augmentation is a function of those and the position in it."""
        train_fn, _ = preprocessors(self.augment, self.image_size)
        base_seed = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(tf.constant([self.seed, epoch], tf.int64), shards), shard)

        def prepare(index, example):
            image, label = example
            seed = tf.random.experimental.stateless_fold_in(base_seed, index)
            return train_fn(image, seed), tf.cast(label, tf.int32)

        part = self._part(batch_size, shards)
        steps = self.steps_per_epoch(batch_size, shards)
        ds = self.train_files.read(shards, shard, epoch).take(steps * part).enumerate()
        ds = ds.skip(skip_batches * part)
        ds = ds.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
        return ds.batch(local_batch_size or part, drop_remainder=True).prefetch(AUTOTUNE)

    def evaluation_steps(self, batch_size: int, shards: int) -> int:
        """The steps of a file-sharded evaluation: as many as the worker with
        the most examples of the held-out split needs, ``B / shards`` a step."""
        part = self._part(batch_size, shards)
        return max(-(-self.eval_files.examples(shards, i) // part) for i in range(shards))

    def evaluation(self, batch_size: int, *, shards: int = 1, shard: int = 0,
                   local_batch_size: Optional[int] = None) -> tf.data.Dataset:
        """The held-out split in batches of ``batch_size``. With ``shards`` > 1
        and file sharding (``file_sharded(shards, evaluation=True)``), worker
        ``shard``'s files only, as (image, label, weight) in full batches of
        ``local_batch_size`` (default ``batch_size / shards``): its examples
        (weight 1), then blank ones (weight 0) up to ``evaluation_steps``
        steps, so that every worker runs the same steps, none of them empty
        (TensorFlow's convolutions cannot take an empty batch)."""
        _, eval_fn = preprocessors(self.augment, self.image_size)

        read = self.read or (lambda image: image)

        def prepare(image, label):
            return eval_fn(read(image)), tf.cast(label, tf.int32)

        if self.file_sharded(shards, evaluation=True):
            part = self._part(batch_size, shards)
            mine = self.eval_files.read(shards, shard, None).map(prepare, num_parallel_calls=AUTOTUNE)
            mine = mine.map(lambda image, label: (image, label, tf.constant(1.0)))
            image_spec, label_spec, _ = mine.element_spec
            blank = (tf.zeros(image_spec.shape, image_spec.dtype), tf.zeros([], label_spec.dtype), tf.constant(0.0))
            padding = self.evaluation_steps(batch_size, shards) * part - self.eval_files.examples(shards, shard)
            ds = mine.concatenate(tf.data.Dataset.from_tensors(blank).repeat(padding))
            return ds.batch(local_batch_size or part, drop_remainder=True).prefetch(AUTOTUNE)
        ds = self.eval_source().map(prepare, num_parallel_calls=AUTOTUNE)
        return ds.batch(batch_size).prefetch(AUTOTUNE)


def order_seed(seed: int, epoch: int, shards: int = 1, shard: int = 0) -> int:
    """The seed of epoch ``epoch``'s order; with ``shards`` > 1, of worker
    ``shard``'s own files (their order depends on the worker count too)."""
    order = seed * 100003 + epoch
    return order if shards == 1 else (order * 1009 + shards) * 1009 + shard


def shuffled(ds: tf.data.Dataset, buffer: int, seed: int, epoch: int, shards: int = 1,
             shard: int = 0) -> tf.data.Dataset:
    """``ds`` in epoch ``epoch``'s order: a function of (seed, epoch) only, and
    of (shards, shard) for a worker reading its own files (``order_seed``)."""
    return ds.shuffle(buffer, seed=order_seed(seed, epoch, shards, shard), reshuffle_each_iteration=False)

