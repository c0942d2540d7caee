"""python -m zoo benchmark-input: the input pipelines in images per second per
core, beside a reference written plainly here (docs/performance.md).

The reference is TF Model Garden's ImageNet preprocessing, as tf.data code:
training decodes only a sampled box of the JPEG (``decode_and_crop_jpeg``
with ``sample_distorted_bounding_box``, scale 0.08–1, ratio 3/4–4/3), flips
and resizes to the output size; evaluation decodes the centre window
(size/(size+32) of the shorter side) and resizes it. Ours are
``ir2net_tf.data.Dataset.train`` and ``.evaluation`` with the ImageNet
augmentation, built as training builds them, on the same encoded images.

Time is the process's CPU time (images per CPU second = images per second
per core), so that other processes on a shared machine do not count. Rounds
interleave the pipelines (their order alternates), so that a machine whose
speed drifts (shared, throttled) slows all of them alike; each round
gives a time ratio ours / reference, and the table holds the median and the
spread (lowest–highest) over the rounds.
"""

import os
import statistics
import sys
import time

import ir2net_tf  # noqa: F401  (Keras 2 before TensorFlow)
import numpy as np
import tensorflow as tf

from ir2net_tf import data
from ir2net_tf.flag_domains import argparse_type, at_least

RATIO_GOAL = 1.05  # issue 27: ours at most 5 % slower than the reference, per image


def photos(count: int, seed: int = 0):
    """``count`` photo-like JPEGs (smooth random colour fields with fine
    texture, 256–500 px a side, quality 90, about 50 KB): encoded bytes."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        height, width = (int(v) for v in rng.integers(256, 501, 2))
        coarse = rng.random((1, 5, 7, 3)).astype(np.float32)
        field = tf.image.resize(coarse, (height, width), method="bicubic")[0].numpy()
        texture = tf.image.resize(rng.normal(0, 0.1, (1, height // 3, width // 3, 3)).astype(np.float32),
                                  (height, width))[0].numpy()
        pixels = np.clip((field + texture) * 255 + rng.normal(0, 3, field.shape), 0, 255).astype(np.uint8)
        images.append(tf.io.encode_jpeg(pixels, quality=90).numpy())
    return images


def folder_images(folder: str, count: int):
    """Up to ``count`` image files under ``folder`` (sorted), as bytes."""
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    if not os.path.isdir(folder):
        raise ValueError(f"--folder {folder!r} is not a directory; give a folder of JPEG or PNG images.")
    paths = sorted(os.path.join(d, n) for d, _, names in os.walk(folder) for n in names
                   if os.path.splitext(n)[1].lower() in _SUPPORTED_IMAGE_FORMAT)[:count]
    if not paths:
        raise ValueError(f"--folder {folder!r} holds no .jpg, .jpeg or .png files.")
    return [open(p, "rb").read() for p in paths]


# ------------------------------------------------------------------ the reference


def reference_train(contents, seed, size: int):
    """Model Garden's training preprocessing: decode-and-crop a sampled box, flip, resize, normalize."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    shape = tf.image.extract_jpeg_shape(contents)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]), seed=crop_seed,
        min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
    image = tf.image.decode_and_crop_jpeg(contents, window, channels=3)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.resize(image, (size, size))
    return data.normalize(image / 255.0)


def reference_eval(contents, size: int):
    """Model Garden's evaluation preprocessing: decode the centre window, resize, normalize."""
    shape = tf.image.extract_jpeg_shape(contents)
    crop = tf.cast(size / (size + 32) * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32), tf.int32)
    top, left = (shape[0] - crop + 1) // 2, (shape[1] - crop + 1) // 2
    image = tf.image.decode_and_crop_jpeg(contents, tf.stack([top, left, crop, crop]), channels=3)
    image = tf.image.resize(image, (size, size))
    return data.normalize(image / 255.0)


# ------------------------------------------------------------------ the pipelines


def _threads(ds: tf.data.Dataset, threads: int) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    options.autotune.cpu_budget = threads
    return ds.with_options(options)


def pipelines(images, size: int, batch: int):
    """name → (epoch → tf.data.Dataset of batches), ours and the reference's."""
    labels = np.zeros(len(images), np.int64)
    source = lambda: tf.data.Dataset.from_tensor_slices((images, labels))  # noqa: E731
    ours = data.Dataset("benchmark", 1, len(images), len(images), lambda epoch: data.shuffled(
        source(), len(images), 0, epoch), source, "imagenet", size, 0)

    def reference_train_pipeline(epoch):
        base = tf.constant([0, epoch], tf.int64)
        ds = source().shuffle(len(images), seed=epoch).enumerate()
        ds = ds.map(lambda i, example: (reference_train(example[0], tf.random.experimental.stateless_fold_in(
            base, i), size), example[1]), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def reference_eval_pipeline(_):
        ds = source().map(lambda contents, label: (reference_eval(contents, size), label),
                          num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

    return {
        "train, ours": lambda epoch: ours.train(epoch, batch),
        "train, reference": reference_train_pipeline,
        "evaluation, ours": lambda _: ours.evaluation(batch),
        "evaluation, reference": reference_eval_pipeline,
    }


def seconds_per_image(make, epoch: int, threads: int) -> float:
    """One pass: the CPU seconds (of this process, all its threads) per image
    after the first batch (start-up). CPU time, not wall time: on a shared
    machine the other processes' work does not count, and 1/(CPU seconds
    per image) is images per second per core, whatever the thread count."""
    iterator = iter(_threads(make(epoch), threads))
    next(iterator)
    start, count = time.process_time(), 0
    for images, _ in iterator:
        count += int(images.shape[0])
    if not count:
        raise ValueError("Too few images for one timed batch after the first; raise --images or lower --batch.")
    return (time.process_time() - start) / count


def measure(images, *, size=224, batch=32, rounds=5, threads=(1, 2), log=print):
    """{threads: {name: [seconds per image, one per round]}}, rounds interleaved."""
    made = pipelines(images, size, batch)
    names = list(made)
    times = {t: {name: [] for name in names} for t in threads}
    for r in range(rounds):
        for t in threads:
            for name in (names if r % 2 == 0 else names[::-1]):
                times[t][name].append(seconds_per_image(made[name], r, t))
        log(f"round {r + 1}/{rounds} done")
    return times


def summary(times) -> list:
    """One row per (threads, pipeline): images/s per core (median, spread)
    and, for ours, the ratio to the reference (median, spread over rounds)."""
    rows = []
    for t, by_name in times.items():
        for name, seconds in by_name.items():
            per_core = [1.0 / s for s in seconds]
            row = dict(threads=t, pipeline=name, per_core=statistics.median(per_core), per_core_low=min(per_core),
                       per_core_high=max(per_core))
            if name.endswith("ours"):
                reference = by_name[name.replace("ours", "reference")]
                ratios = [a / b for a, b in zip(seconds, reference)]
                row.update(ratio=statistics.median(ratios), ratio_low=min(ratios), ratio_high=max(ratios))
            rows.append(row)
    return rows


def table(rows) -> str:
    lines = ["| threads | pipeline | images/s per core: median (lowest–highest) | time ratio ours/reference: "
             "median (lowest–highest) |", "|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.3f} ({r['ratio_low']:.3f}–{r['ratio_high']:.3f})" if "ratio" in r else ""
        lines.append(f"| {r['threads']} | {r['pipeline']} | {r['per_core']:.0f} ({r['per_core_low']:.0f}–"
                     f"{r['per_core_high']:.0f}) | {ratio} |")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=argparse_type(at_least(2)), default=512,
                        help="images per pass (generated photos, or the first of --folder's) (512)")
    parser.add_argument("--folder", help="time on this folder's images instead of generated photos")
    parser.add_argument("--rounds", type=argparse_type(at_least(1)), default=7,
                        help="interleaved rounds; the spread is over them (7)")
    parser.add_argument("--threads", type=argparse_type(at_least(1)), nargs="+", default=[1, 2],
                        help="tf.data thread pool sizes to time (1 2)")
    parser.add_argument("--size", type=argparse_type(at_least(1)), default=224, help="output size (224)")
    parser.add_argument("--batch", type=argparse_type(at_least(1)), default=32, help="batch size (32)")


def run(args) -> int:
    images = folder_images(args.folder, args.images) if args.folder else photos(args.images)
    if len(images) < 2 * args.batch:
        raise ValueError(f"{len(images)} images make fewer than two batches of {args.batch}; raise --images "
                         "or lower --batch.")
    kilobytes = sum(len(i) for i in images) / len(images) / 1024
    print(f"{len(images)} images, {kilobytes:.0f} KB on average; {os.cpu_count()} cores on this machine",
          file=sys.stderr)
    times = measure(images, size=args.size, batch=args.batch, rounds=args.rounds, threads=args.threads,
                    log=lambda line: print(line, file=sys.stderr))
    print(table(summary(times)))
    return 0
