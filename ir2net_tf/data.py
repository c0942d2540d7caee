"""Input pipelines (docs/recipes.md: the recipes' augmentation).

Every dataset becomes a ``Dataset``: per-epoch training pipelines whose order
and augmentation depend only on (seed, epoch), so that a run resumed in the
middle of an epoch sees exactly the batches it had not yet consumed, and a
fixed evaluation pipeline. Sources: scikit-learn's 8×8 digits (the offline
demo), any tensorflow-datasets name, or a folder of images, one sub-folder per
class.
"""

import dataclasses
import os
from typing import Callable, Optional, Tuple

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import numpy as np
import tensorflow as tf
from absl import logging

from ir2net_tf import tfds_manual

AUTOTUNE = tf.data.AUTOTUNE
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA lighting noise: eigenvalues and eigenvectors (columns) of the
# ImageNet RGB covariance, on the 0–1 scale.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
PCA_ALPHA_STD = 0.1
AUGMENTATIONS = ("auto", "cifar", "imagenet", "shift", "none")
DIGITS_HOLDOUT = 0.2
FOLDER_HOLDOUT_EVERY = 10  # a flat class folder keeps every 10th image for validation


def normalize(images):
    """ImageNet mean/std normalization of images on the 0–1 scale (what every
    zoo model expects)."""
    images = tf.convert_to_tensor(images, tf.float32)
    return (images - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def to_float(image):
    """uint8 (or already float 0–1) image → float32 on the 0–1 scale."""
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    return tf.cast(image, tf.float32)


def decode(image):
    """Encoded bytes → uint8 RGB; decoded images (mocked tfds) pass through."""
    if image.dtype == tf.string:
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
    if image.shape.rank == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return image


# --------------------------------------------------------------------------
# Augmentation. ``seed`` is a stateless seed (shape [2]) so that every sample
# of every epoch is augmented the same way on a rerun.


def _seeds(seed, count):
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def pad_and_crop(image, seed, pad: int):
    """Zero-pad ``pad`` pixels on every side, then a random crop of the
    original size (CIFAR's 4-pixel translation)."""
    shape = tf.shape(image)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, shape, seed=seed)


def cifar_train(image, seed, size: int, flip: bool = True):
    """CIFAR augmentation: random horizontal flip, 4-px zero pad + random crop
    (the pad scales with the image: 4 px at 32), normalize."""
    flip_seed, crop_seed = _seeds(seed, 2)
    image = tf.image.resize(to_float(decode(image)), (size, size))
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = pad_and_crop(image, crop_seed, max(1, size // 8))
    return normalize(image)


def resize_only(image, size: int):
    return normalize(tf.image.resize(to_float(decode(image)), (size, size)))


def is_jpeg(contents):
    """Whether encoded bytes are a JPEG (by its first bytes, not the file
    name: older ImageNet releases hold a PNG named .JPEG)."""
    return tf.equal(tf.strings.substr(contents, 0, 3), b"\xff\xd8\xff")


# Pixels decoded beyond each side of a JPEG window (1 suffices for 4:2:0 and
# 4:2:2 chroma; 2 for wider subsampling).
_JPEG_MARGIN = 2


def decode_window(image, window: Callable):
    """Decodes only the window ``window((height, width)) → (begin, size)``
    (each [y, x], int32) of ``image``; returns (the window as uint8 RGB,
    the whole image's (height, width)).

    A JPEG's size is read from its header and only the window, widened by
    ``_JPEG_MARGIN`` pixels, is decoded (``decode_and_crop_jpeg``), then cut
    to the window: the same pixels as a full decode then a crop, for RGB,
    grayscale and CMYK JPEGs alike (decoded exactly to the window, the pixels
    on its edges differ in chroma-subsampled JPEGs: libjpeg upsamples the
    colour there as at an image edge). Other formats (PNG) are decoded whole,
    then cropped; decoded images (arrays, mocked tfds) are cropped."""

    def crop(full):
        shape = tf.shape(full)[:2]
        begin, size = window(shape)
        return tf.slice(full, tf.concat([begin, [0]], 0), tf.concat([size, [-1]], 0)), shape

    if image.dtype != tf.string:
        return crop(decode(image))

    def jpeg():
        shape = tf.image.extract_jpeg_shape(image)[:2]
        begin, size = window(shape)
        start = tf.maximum(begin - _JPEG_MARGIN, 0)
        stop = tf.minimum(begin + size + _JPEG_MARGIN, shape)
        wide = tf.image.decode_and_crop_jpeg(image, tf.concat([start, stop - start], 0), channels=3)
        return tf.slice(wide, tf.concat([begin - start, [0]], 0), tf.concat([size, [-1]], 0)), shape

    part, shape = tf.cond(is_jpeg(image), jpeg, lambda: crop(decode(image)))
    part.set_shape([None, None, 3])
    return part, shape


def _resized_crop(image, seed, size: int, scale, ratio):
    """random_resized_crop on the image's own scale (0–255 for uint8), and
    the factor to 0–1."""
    bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])

    def window(shape):
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.concat([shape, [3]], 0),
            bbox,
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=ratio,
            area_range=scale,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        return begin[:2], crop_size[:2]

    crop, _ = decode_window(image, window)
    # uint8 resized as it is (resize computes in float32), scaled to 0–1 after:
    # 224² pixels to scale instead of the whole crop.
    unit = 1.0 / 255.0 if crop.dtype == tf.uint8 else 1.0
    return tf.image.resize(crop, (size, size)), unit


def random_resized_crop(image, seed, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """Inception-style crop: a box of random area (``scale`` of the image) and
    aspect ratio, resized to ``size``, on the 0–1 scale; falls back to the
    whole image. Takes an image or its encoded bytes (a JPEG is decoded only
    inside the box)."""
    resized, unit = _resized_crop(image, seed, size, scale, ratio)
    return resized * unit


def lighting_shift(seed, alpha_std: float = PCA_ALPHA_STD):
    """AlexNet lighting noise's colour shift Σ_i α_i λ_i v_i, α ~ N(0, std)."""
    alpha = tf.random.stateless_normal([3], seed, stddev=alpha_std)
    return tf.linalg.matvec(tf.constant(PCA_EIGVEC), alpha * tf.constant(PCA_EIGVAL))


def pca_lighting(image, seed, alpha_std: float = PCA_ALPHA_STD):
    """AlexNet lighting noise: add Σ_i α_i λ_i v_i to every pixel, α ~ N(0, std)."""
    return image + lighting_shift(seed, alpha_std)


def imagenet_train(image, seed, size: int):
    """Random resized crop (scale 0.08–1), PCA lighting (α std 0.1), flip, normalize.

    Scaling to 0–1, lighting and normalization are one multiply-add per
    pixel: normalize(x/255 + shift) = x·(1/(255·std)) + (shift − mean)/std
    (equal up to float rounding, below 1e-5)."""
    crop_seed, light_seed, flip_seed = _seeds(seed, 3)
    image, unit = _resized_crop(image, crop_seed, size, (0.08, 1.0), (3 / 4, 4 / 3))
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    std = tf.constant(IMAGENET_STD)
    return image * (unit / std) + (lighting_shift(light_seed) - tf.constant(IMAGENET_MEAN)) / std


def imagenet_eval(image, size: int):
    """Resize the shorter side to size·256/224 (256 at 224), center crop ``size``.

    The whole image is decoded: decoding only the centre window
    (``decode_and_crop_jpeg``) saves little here (the window keeps 77 % of
    the rows at 224, and the time is in the entropy decoding of those rows),
    and resizing only the window cannot sample the same positions with the
    fast bilinear kernel (a crop then a resize samples up to half a pixel
    elsewhere; ``crop_and_resize`` at the exact positions is slower than the
    whole resize: docs/performance.md). The uint8 image is resized as it is
    and only the crop is scaled to 0–1 (equal to scaling first up to float
    rounding, below 1e-5)."""
    image = decode(image)
    to_unit = 1.0 / 255.0 if image.dtype == tf.uint8 else 1.0  # (to_float's scaling)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    resize_to = tf.round(size * 256.0 / 224.0)
    scale = resize_to / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new_shape)  # float32, on the 0–255 scale of a uint8 image
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    image = image[top : top + size, left : left + size, :]
    image.set_shape([size, size, 3])
    return normalize(image * to_unit)


def preprocessors(augment: str, size: int) -> Tuple[Callable, Callable]:
    """(train_fn(image, seed), eval_fn(image)) for augmentation ``augment``."""
    if augment == "cifar":
        return (lambda image, seed: cifar_train(image, seed, size)), (lambda image: resize_only(image, size))
    if augment == "shift":  # translation only: digits must not be mirrored
        return (lambda image, seed: cifar_train(image, seed, size, flip=False)), (lambda image: resize_only(image, size))
    if augment == "imagenet":
        return (lambda image, seed: imagenet_train(image, seed, size)), (lambda image: imagenet_eval(image, size))
    if augment == "none":
        return (lambda image, seed: resize_only(image, size)), (lambda image: resize_only(image, size))
    raise ValueError(f"Unknown augmentation {augment!r}; choose one of {AUGMENTATIONS}.")


# --------------------------------------------------------------------------
# Datasets


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


def _shuffled(ds: tf.data.Dataset, buffer: int, seed: int, epoch: int) -> tf.data.Dataset:
    return ds.shuffle(buffer, seed=seed * 100003 + epoch, reshuffle_each_iteration=False)


def digits_arrays(size: int):
    """scikit-learn's 1,797 8×8 digits as uint8 RGB ``size``×``size`` images,
    split once (stratified, fixed seed) into 80 % train and 20 % held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).astype(np.float32)[..., None]
    images = tf.image.resize(images, (size, size), method="bilinear").numpy()
    images = np.repeat(np.clip(np.round(images), 0, 255).astype(np.uint8), 3, axis=-1)
    return train_test_split(
        images, digits.target.astype(np.int32), test_size=DIGITS_HOLDOUT, random_state=0, stratify=digits.target
    )


def load_digits(image_size: int, augment: str, seed: int) -> Dataset:
    x_train, x_test, y_train, y_test = digits_arrays(image_size)

    def train_source(epoch):
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        return _shuffled(ds, len(x_train), seed, epoch)

    return Dataset(
        "digits", 10, len(x_train), len(x_test), train_source,
        lambda: tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        "shift" if augment == "auto" else augment, image_size, seed,
    )


# The tfds splits used for training and for held-out evaluation.
EVAL_SPLITS = ("validation", "test")


def _mocked(builder) -> bool:
    """tfds.testing.mock_data replaces download_and_prepare: nothing to prepare."""
    return getattr(type(builder).download_and_prepare, "__name__", "") != "download_and_prepare"


def _prepare_tfds(builder, name: str, manual_dir: Optional[str]):
    import tensorflow_datasets as tfds

    if tfds_manual.is_manual(builder):
        # Nothing is downloaded: no GCS lookup (a network wait offline), and
        # our line instead of tfds' "Downloading and preparing … Unknown size".
        where = tfds_manual.manual_dir_of(builder, manual_dir)
        config = tfds.download.DownloadConfig(manual_dir=where, try_download_gcs=False)
        # (and no "downloaded and prepared" at the end).
        builder._log_download_bytes = builder._log_download_done = lambda: None
        logging.info("Preparing dataset %r from the files in %s into %s (once; reused afterwards).",
                     name, where, builder.data_dir)
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as error:  # noqa: BLE001 — a damaged or unfinished file fails many ways
            raise ValueError(
                f"Preparing dataset {name!r} from the files in {where} failed ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:300]}). A file still downloading or damaged does this: "
                "check their sizes against the official ones, then run the same command again."
            ) from error
        logging.info("Dataset %r prepared in %s; later runs reuse it.", name, builder.data_dir)
        return
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 — offline downloads fail many ways
        raise ValueError(
            f"Could not download or prepare dataset {name!r} into {builder._data_dir_root}: "
            f"{type(error).__name__}: {error}. Connect to the internet, or pass --data_dir "
            "pointing at a directory where it is already prepared."
        ) from error


def split_names(spec: str) -> list:
    """The split names a tfds split spec reads (``train[:1%]+test`` → train, test)."""
    return [part.split("[")[0].strip() for part in spec.split("+")]


def check_split_spec(spec: Optional[str], option: str) -> None:
    """A tfds split spec (``train[:1%]``, ``validation[:64]``) parses; checked
    before any work."""
    if spec is None:
        return
    import tensorflow_datasets as tfds

    try:
        tfds.core.ReadInstruction.from_spec(spec)
    except (ValueError, TypeError, AssertionError) as error:
        raise ValueError(
            f"{option} {spec!r} is not a tensorflow-datasets split: write a split name with an optional "
            "slice, e.g. train[:1%], train[:1000] or validation[:64] "
            "(https://www.tensorflow.org/datasets/splits)."
        ) from error


def check_splits(name: str, train_split: Optional[str], validation_split: Optional[str]) -> None:
    """--train_split / --validation_split: valid specs, for a tfds dataset."""
    given = [o for o, v in (("--train_split", train_split), ("--validation_split", validation_split)) if v]
    if given and (name == "digits" or is_folder(name)):
        raise ValueError(f"{' and '.join(given)} slice tensorflow-datasets splits; --dataset {name!r} has fixed "
                         "splits. Drop them, or train on a tensorflow-datasets dataset.")
    check_split_spec(train_split, "--train_split")
    check_split_spec(validation_split, "--validation_split")


def _split_size(builder, split: str, ds: tf.data.Dataset) -> int:
    splits = builder.info.splits
    if all(n in splits for n in split_names(split)):
        return int(splits[split].num_examples)  # tfds counts slices too
    # Mocked or partial datasets carry no split metadata: count.
    cardinality = int(ds.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(ds.reduce(0, lambda count, _: count + 1))


def _tfds_source(builder, split, *, seed, epoch=None):
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(
        shuffle_seed=None if epoch is None else seed * 100003 + epoch,
        interleave_cycle_length=16,
    )
    ds = builder.as_dataset(
        split=split,
        shuffle_files=epoch is not None,
        as_supervised=True,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    if epoch is not None:
        ds = _shuffled(ds, 10_000, seed, epoch)
    return ds


def _missing_splits(splits, train_split: Optional[str], validation_split: Optional[str]) -> list:
    """The splits training needs that ``splits`` lacks."""
    missing = [n for n in split_names(train_split or "train") if n not in splits]
    if validation_split:
        missing += [n for n in split_names(validation_split) if n not in splits]
    elif not any(s in splits for s in EVAL_SPLITS):
        missing.append(" or ".join(EVAL_SPLITS))
    return missing


def _from_builder(builder, name, image_size, augment, seed, size_hint, train_split=None,
                  validation_split=None) -> Dataset:
    splits = [str(s) for s in builder.info.splits] or ["train", *EVAL_SPLITS]
    missing = _missing_splits(splits, train_split, validation_split)
    if missing:
        raise ValueError(
            f"Dataset {name!r} has splits {splits}; training needs {', '.join(repr(m) for m in missing)} "
            f"(--train_split / --validation_split choose others)."
        )
    train_split = train_split or "train"
    eval_split = validation_split or next(s for s in EVAL_SPLITS if s in splits)
    if augment == "auto":
        augment = "imagenet" if size_hint >= 64 else "cifar"
    features = builder.info.features
    if "label" not in features or not hasattr(features["label"], "num_classes"):
        raise ValueError(f"Dataset {name!r} has no class label feature; it cannot train a classifier.")
    train_source = lambda epoch: _tfds_source(builder, train_split, seed=seed, epoch=epoch)  # noqa: E731
    eval_source = lambda: _tfds_source(builder, eval_split, seed=seed)  # noqa: E731
    eval_examples = _split_size(builder, eval_split, eval_source())
    if eval_examples < 1:
        raise ValueError(f"The held-out split {eval_split!r} of {name!r} holds no examples; widen --validation_split.")
    dataset = Dataset(
        name, int(features["label"].num_classes), _split_size(builder, train_split, train_source(0)),
        eval_examples, train_source, eval_source, augment, image_size, seed,
    )
    logging.info("Dataset %s: %d training examples (%s), %d held out (%s).", name, dataset.train_examples,
                 train_split, dataset.eval_examples, eval_split)
    return dataset


# Where tfds fetches prepared datasets first; reachable means "online".
_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def _online(timeout: float = 5.0) -> bool:
    """Whether the download host answers (behind a proxy: assumed so)."""
    import socket

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection(_DOWNLOAD_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def check_tfds_source(builder, name: str, data_dir: Optional[str]) -> None:
    """Fails in seconds, not after tfds' minutes of retries, when ``name`` is
    not prepared and cannot be downloaded: no network (datasets that need a
    manual download are checked by tfds_manual instead)."""
    if os.path.exists(os.path.join(str(builder.data_dir), "dataset_info.json")):
        return
    if _mocked(builder) or tfds_manual.is_manual(builder) or _online():
        return
    where = data_dir or str(builder._data_dir_root)
    raise ValueError(
        f"Dataset {name!r} is not prepared in {where} and this machine is offline ({_DOWNLOAD_HOST[0]} "
        "does not answer). Connect to the internet, or pass --data_dir pointing at a directory where it "
        "is already prepared."
    )


def check_paths(name: str, data_dir: Optional[str]) -> None:
    """The dataset's folder or ``data_dir`` exists (nothing is created for
    a mistyped path); cheap, so that ``python -m train`` checks it before
    writing anything."""
    if name != "digits" and is_folder(name) and not os.path.isdir(os.path.expanduser(name)):
        raise ValueError(f"Image folder {os.path.abspath(os.path.expanduser(name))!r} does not exist (--dataset).")
    if data_dir is not None and not is_folder(name) and not os.path.isdir(os.path.expanduser(data_dir)):
        raise ValueError(
            f"--data_dir {data_dir!r} does not exist. Point it at the directory where {name!r} is prepared, "
            "or create it first to download the dataset into it."
        )


def _quiet_tfds() -> None:
    """tfds logs "Constructing tf.data.Dataset" for every pipeline built
    (5–7 per run); _from_builder logs the splits once instead."""
    import logging as python_logging

    absl_logger = python_logging.getLogger("absl")
    if not any(getattr(f, "ir2net_tfds", False) for f in absl_logger.filters):
        quiet = python_logging.Filter()
        quiet.filter = lambda record: "Constructing tf.data.Dataset" not in record.getMessage()
        quiet.ir2net_tfds = True
        absl_logger.addFilter(quiet)


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # noqa: BLE001 — tfds raises its own not-found types
        # tfds's message lists every dataset it knows; keep only its suggestion.
        hint = next((line for line in str(error).splitlines() if line.startswith("Did you mean")), "")
        raise ValueError(
            f"Unknown dataset {name!r}. Choose 'digits', a tensorflow-datasets name (e.g. cifar10, "
            "cifar100, imagenet2012; all: tfds.list_builders()) or a folder of images with one "
            f"sub-folder per class. {hint}".strip()
        ) from error


def _partial(splits) -> bool:
    """A prepared dataset without 'train' or any held-out split (the splits
    the user names are checked against the prepared ones by _from_builder)."""
    return splits is not None and bool(_missing_splits(splits, None, None))


def _check_manual_files(builder, name, where, splits) -> Optional[str]:
    """tfds_manual.check_files, telling of a partial preparation; returns
    why that one is partial (None if there is none)."""
    why = f"splits {splits} only: a file was missing when it was prepared" if _partial(splits) else None
    tfds_manual.check_files(builder, name, where, partial=why and f"{builder.data_dir} ({why})")
    return why


def check_manual_download(name: str, data_dir: Optional[str], manual_dir: Optional[str]) -> None:
    """Before any file is written (``python -m train`` checks settings
    first): a manual-download tfds dataset that still has to be prepared has
    its files in place."""
    if name == "digits" or is_folder(name) or (data_dir and not os.path.isdir(os.path.expanduser(data_dir))):
        return
    builder = _builder(name, data_dir)
    if _mocked(builder) or not tfds_manual.is_manual(builder):
        return
    splits = tfds_manual.prepared_splits(builder)
    if splits is None or _partial(splits):
        _check_manual_files(builder, name, tfds_manual.manual_dir_of(builder, manual_dir), splits)


def prepared_builder(name, *, data_dir, manual_dir, train_split=None, validation_split=None):
    """The tfds builder of ``name``, prepared with every split training needs.

    A manual-download dataset is prepared only when all its files are in
    place; a prepared copy lacking a needed split (a file was missing when
    it was prepared) is removed and prepared again once the files are there,
    so the same command works after the user fixes the layout."""
    check_paths(name, data_dir)
    _quiet_tfds()
    builder = _builder(name, data_dir)
    if _mocked(builder):
        return builder
    manual = tfds_manual.is_manual(builder)
    where = tfds_manual.manual_dir_of(builder, manual_dir)
    splits = tfds_manual.prepared_splits(builder)
    if manual and _partial(splits):
        why = _check_manual_files(builder, name, where, splits)
        tfds_manual.remove_prepared(builder, why)
        builder, splits = _builder(name, data_dir), None
    if splits is None:
        check_tfds_source(builder, name, data_dir)
        if manual:
            _check_manual_files(builder, name, where, splits)
            tfds_manual.warn_short_files(builder, where)
        _prepare_tfds(builder, name, manual_dir)
        splits = [str(s) for s in builder.info.splits]
        missing = _missing_splits(splits, None, None)
        if manual and missing:
            # A builder whose files we do not know prepared what it found.
            tfds_manual.remove_prepared(builder, f"no {', '.join(missing)} split")
            raise ValueError(
                f"Preparing {name!r} from {where} gave splits {splits}, without {', '.join(missing)}: a file "
                "tfds reads is missing there. tfds' instructions: "
                f"{' '.join(str(builder.MANUAL_DOWNLOAD_INSTRUCTIONS).split())}"
            )
    return builder


def load_tfds(name, *, data_dir, manual_dir, image_size, augment, seed, train_split=None,
              validation_split=None) -> Dataset:
    check_splits(name, train_split, validation_split)
    builder = prepared_builder(name, data_dir=data_dir, manual_dir=manual_dir, train_split=train_split,
                               validation_split=validation_split)
    return _from_builder(builder, name, image_size, augment, seed, image_size, train_split, validation_split)


def _has_images(folder: str) -> bool:
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    for _, _, files in os.walk(folder):
        if any(os.path.splitext(f)[1].lower() in _SUPPORTED_IMAGE_FORMAT for f in files):
            return True
    return False


# The first bytes of each format ImageFolder reads, and how a whole file ends.
_SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff"}
_ENDINGS = {".png": b"IEND\xaeB`\x82", ".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9"}
_TAIL = 1024  # JPEG writers may add padding after the end-of-image marker


def damaged_image(path: str) -> Optional[str]:
    """Why the image file ``path`` cannot be decoded (not an image of a
    format ImageFolder reads, or cut short), or None. Reads only its first and last bytes,
    so that a folder of a million images is checked in seconds."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(0, os.path.getsize(path) - _TAIL))
            tail = f.read()
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    # By the content, not the name: a PNG named .JPEG decodes (older ImageNet releases hold one).
    kind = next((k for k, signature in _SIGNATURES.items() if head.startswith(signature)), None)
    if kind is None:
        return "empty" if not head else f"not a {suffix[1:].upper()} image"
    if _ENDINGS[kind] not in tail:
        return "truncated"
    return None


def check_image_folder(root: str) -> None:
    """Raises a ValueError naming every damaged image under ``root`` (the
    files ImageFolder would read), before any training step."""
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    damaged = []
    for folder, directories, names in os.walk(root, followlinks=True):
        # A directory named like an image would be listed, then fail to read mid-epoch.
        damaged += [f"{os.path.join(folder, d)} (a directory, not an image file)" for d in sorted(directories)
                    if os.path.splitext(d)[1].lower() in _SUPPORTED_IMAGE_FORMAT]
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() in _SUPPORTED_IMAGE_FORMAT:
                why = damaged_image(os.path.join(folder, name))
                if why:
                    damaged.append(f"{os.path.join(folder, name)} ({why})")
    if damaged:
        shown = "; ".join(damaged[:10]) + (f"; and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise ValueError(
            f"Image folder {root!r} holds {len(damaged)} image file(s) that cannot be decoded: {shown}. "
            "Delete or replace them, then run again."
        )


# A full decode of every image is the only check that finds damage inside a
# file's data; it runs once per folder content (the cache below remembers a
# folder that passed, by its files' names, sizes and modification times).
CHECKED_FOLDERS_CACHE = "IR2NET_CACHE_DIR"
_PROGRESS_SECONDS = 10.0
_PROGRESS_FROM = 2_000  # folders of more images log their progress


def _cache_dir() -> str:
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ir2net_tf")
    return os.path.join(os.environ.get(CHECKED_FOLDERS_CACHE) or default, "decoded_image_folders")


def _image_files(root: str) -> list:
    """Every file under ``root`` that ImageFolder (or our flat reader) reads."""
    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
        if os.path.splitext(name)[1].lower() in _SUPPORTED_IMAGE_FORMAT
    )


def _folder_digest(root: str, paths: list) -> str:
    import hashlib

    digest = hashlib.sha256(f"v1\0{root}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _decoded_shape(contents):
    """Decodes all of an image's data (what training may read), cheaply: a
    JPEG at 1/8 scale (libjpeg still reads every entropy-coded byte)."""
    jpeg = tf.strings.substr(contents, 0, 3) == b"\xff\xd8\xff"
    return tf.cond(
        jpeg,
        lambda: tf.shape(tf.io.decode_jpeg(contents, channels=3, ratio=8)),
        lambda: tf.shape(tf.io.decode_image(contents, channels=3, expand_animations=False)),
    )


def undecodable_images(paths: list, *, label: str = "") -> list:
    """``"path (why)"`` for each of ``paths`` that does not decode fully.

    Decodes them in parallel; a decode error drops the file
    (``ignore_errors``), and the dropped files are decoded again one by one
    for their error message."""
    paths = list(paths)
    if not paths:
        return []
    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.map(lambda path: (path, _decoded_shape(tf.io.read_file(path))), num_parallel_calls=AUTOTUNE,
                deterministic=False).ignore_errors()
    import time

    decoded, last = set(), time.monotonic()
    for path, _ in ds.as_numpy_iterator():
        decoded.add(path.decode())
        if len(paths) >= _PROGRESS_FROM and time.monotonic() - last > _PROGRESS_SECONDS:
            last = time.monotonic()
            logging.info("Checked %d of %d images%s.", len(decoded), len(paths), label)
    damaged = []
    for path in (p for p in paths if p not in decoded):
        try:
            _decoded_shape(tf.io.read_file(path))
            why = "cannot be decoded"  # failed in the batch run only: still refused
        except (tf.errors.OpError, ValueError) as error:
            message = getattr(error, "message", str(error)).strip().splitlines()
            why = f"cannot be decoded: {message[-1] if message else type(error).__name__}"
        damaged.append(f"{path} ({why})")
    return damaged


def check_images_decode(root: str) -> None:
    """Raises a ValueError naming every image under ``root`` that does not
    decode, whatever part of it is damaged (a bad header or end is found by
    ``check_image_folder`` first). Once a folder passed, the same content
    is not decoded again."""
    paths = _image_files(root)
    marker = os.path.join(_cache_dir(), _folder_digest(root, paths))
    if os.path.exists(marker):
        return
    if len(paths) >= _PROGRESS_FROM:
        logging.info("Decoding the %d images of %s once, to find damaged files before training.", len(paths), root)
    damaged = undecodable_images(paths, label=f" of {root}")
    if damaged:
        shown = "; ".join(damaged[:10]) + (f"; and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise ValueError(
            f"Image folder {root!r} holds {len(damaged)} image file(s) that cannot be decoded: {shown}. "
            "Delete or replace them, then run again."
        )
    try:  # remembered for the next run; a cache that cannot be written costs only time
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker + f".{os.getpid()}", "w") as f:
            f.write(root + "\n")
        os.replace(marker + f".{os.getpid()}", marker)
    except OSError:
        pass


def check_folder_classes(root: str, num_classes: int, split_counts: dict) -> None:
    """A classifier needs two classes and examples in every split it uses."""
    if num_classes < 2:
        raise ValueError(
            f"Image folder {root!r} has {num_classes} class folder(s); a classifier needs at least 2 "
            f"(lay it out as {root}/<class name>/<image files>)."
        )
    for split, count in split_counts.items():
        if count < 1:
            raise ValueError(f"The {split!r} split of image folder {root!r} holds no images; add some.")


def load_folder(root, *, image_size, augment, seed) -> Dataset:
    """A folder of images, as ``tfds.folder_dataset.ImageFolder`` reads it.

    Either ``root/<split>/<class>/*.jpg`` with a ``train`` split and a
    ``validation`` or ``test`` split, or ``root/<class>/*.jpg``, in which case
    every 10th image (in ImageFolder's fixed order) is held out. Damaged
    image files, whatever part of them is damaged, are named before any
    training (``check_image_folder``, ``check_images_decode``), so that every
    image counted is one the pipeline yields.
    """
    import tensorflow_datasets as tfds

    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"Image folder {root!r} does not exist.")
    if not _has_images(root):
        raise ValueError(
            f"Image folder {root!r} contains no images (.jpg, .jpeg, .png). Lay it out as "
            f"{root}/<class name>/<image files>, or with train/ and validation/ splits above the classes."
        )
    check_image_folder(root)
    check_images_decode(root)
    children = {d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))}
    if "train" in children and children & set(EVAL_SPLITS):
        builder = tfds.folder_dataset.ImageFolder(root)
        used = ["train", next(s for s in EVAL_SPLITS if s in children)]
        check_folder_classes(root, int(builder.info.features["label"].num_classes),
                             {s: int(builder.info.splits[s].num_examples) if s in builder.info.splits else 0
                              for s in used})
        # The examples in ImageFolder's order, shuffled by our seed (its own
        # as_dataset shuffles without one: no two runs, and no resumed run,
        # would see the same order).
        label_of = builder.info.features["label"].str2int
        train, held = ([(e.image_path, label_of(e.label)) for e in builder._split_examples[s]] for s in used)
        return Dataset(
            os.path.basename(root), int(builder.info.features["label"].num_classes), len(train), len(held),
            lambda epoch: _shuffled(_paths(train), len(train), seed, epoch), lambda: _paths(held),
            ("imagenet" if image_size >= 64 else "cifar") if augment == "auto" else augment, image_size, seed,
            read=tf.io.read_file,
        )
    # A flat class layout: the examples in the order ImageFolder would give
    # them as its split "train", read straight from the folder.
    classes, paths, labels = flat_examples(root)
    count = len(paths)
    check_folder_classes(root, len(classes), {"train": count})
    held_out = count // FOLDER_HOLDOUT_EVERY
    if held_out < 1:
        raise ValueError(f"Image folder {root!r} has {count} images; it needs at least {FOLDER_HOLDOUT_EVERY}.")
    examples = list(zip(paths, labels.tolist()))
    train = [e for i, e in enumerate(examples) if i % FOLDER_HOLDOUT_EVERY]
    held = [e for i, e in enumerate(examples) if not i % FOLDER_HOLDOUT_EVERY]
    return Dataset(
        os.path.basename(root), len(classes), len(train), len(held),
        lambda epoch: _shuffled(_paths(train), len(train), seed, epoch), lambda: _paths(held),
        ("imagenet" if image_size >= 64 else "cifar") if augment == "auto" else augment, image_size, seed,
        read=tf.io.read_file,
    )


def _paths(examples) -> tf.data.Dataset:
    """(path, label) pairs as a dataset; the files are read by Dataset.read."""
    paths = [path for path, _ in examples]
    return tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), np.array([l for _, l in examples],
                                                                                        np.int64)))


def flat_examples(root: str):
    """(class names, image paths, labels) of ``root/<class>/<image>`` in
    ``tfds.folder_dataset.ImageFolder``'s order for a split named "train"
    (sorted classes, sorted files, shuffled by ``random.Random("train")``),
    so that the held-out images are those earlier versions held out; no
    temporary split folder is needed."""
    import random

    from tensorflow_datasets.core.folder_dataset.image_folder import _SUPPORTED_IMAGE_FORMAT

    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    examples = [
        (os.path.join(root, name, f), label)
        for label, name in enumerate(classes)
        for f in sorted(os.listdir(os.path.join(root, name)))
        if f.lower().endswith(_SUPPORTED_IMAGE_FORMAT)
    ]
    random.Random("train").shuffle(examples)
    return classes, [p for p, _ in examples], np.array([label for _, label in examples], np.int64)


def is_folder(name: str) -> bool:
    return os.sep in name or name.startswith(".") or os.path.isdir(name)


def load(name: str, *, image_size: int, data_dir=None, manual_dir=None, augment="auto", seed=0, train_split=None,
         validation_split=None) -> Dataset:
    """The dataset ``name``: ``digits``, a folder path, or a tfds name;
    ``train_split`` / ``validation_split``: tfds split specs (slices such as
    ``train[:1%]``) instead of the whole train and held-out splits."""
    from ir2net_tf.flag_domains import at_least

    at_least(1).check(image_size, "image_size")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {augment!r}; choose one of {AUGMENTATIONS}.")
    check_splits(name, train_split, validation_split)
    if name == "digits":
        return load_digits(image_size, augment, seed)
    if is_folder(name):
        return load_folder(name, image_size=image_size, augment=augment, seed=seed)
    return load_tfds(name, data_dir=data_dir, manual_dir=manual_dir, image_size=image_size, augment=augment, seed=seed,
                     train_split=train_split, validation_split=validation_split)
