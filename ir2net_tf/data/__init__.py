"""Input pipelines (docs/recipes.md: the recipes' augmentation).

Every dataset becomes a ``Dataset``: per-epoch training pipelines whose order
and augmentation depend only on (seed, epoch), so that a run resumed in the
middle of an epoch sees exactly the batches it had not yet consumed, and a
fixed evaluation pipeline. Sources: scikit-learn's 8×8 digits (the offline
demo), any tensorflow-datasets name, or a folder of images, one sub-folder per
class.

The modules, each importing only those listed before it:

- ``decoding``: encoded bytes → uint8 RGB, whole or a window of it;
- ``augment``: normalization, crops, flips, lighting; the (train, eval)
  preprocessing of each augmentation name;
- ``dataset``: the ``Dataset`` object and its pipelines;
- ``sources/``: ``digits``, ``tfds`` (with ``imagenet_manual``), ``folder``;
- ``loader``: ``load(name)`` and the checks on a dataset name;
- ``service``: training batches made by tf.data service (``--data_service``)
  and the server that makes them (``python -m zoo data-service``); imported
  by the run, not by this package.

Importing the package imports TensorFlow (as ``data.py`` did before it was
split; tensorflow-datasets and scikit-learn are imported only by the
functions that need them).
"""

from ir2net_tf.data.augment import (
    AUGMENTATIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PCA_ALPHA_STD,
    PCA_EIGVAL,
    PCA_EIGVEC,
    cifar_train,
    imagenet_eval,
    imagenet_train,
    lighting_shift,
    normalize,
    pad_and_crop,
    pca_lighting,
    preprocessors,
    random_resized_crop,
    resize_only,
    to_float,
)
from ir2net_tf.data.dataset import EVAL_SPLITS, Dataset, SplitFiles, shuffled
from ir2net_tf.data.decoding import decode, decode_window, is_jpeg
from ir2net_tf.data.loader import check_manual_download, check_paths, check_splits, is_folder, load
from ir2net_tf.data.sources.digits import DIGITS_HOLDOUT, digits_arrays, load_digits
from ir2net_tf.data.sources.folder import (
    CHECKED_FOLDERS_CACHE,
    FOLDER_HOLDOUT_EVERY,
    check_folder_classes,
    check_image_folder,
    check_images_decode,
    damaged_image,
    flat_examples,
    load_folder,
    undecodable_images,
)
from ir2net_tf.data.sources.tfds import check_split_spec, check_tfds_source, load_tfds, prepared_builder, split_names

__all__ = [
    "AUGMENTATIONS", "CHECKED_FOLDERS_CACHE", "DIGITS_HOLDOUT", "Dataset", "EVAL_SPLITS", "FOLDER_HOLDOUT_EVERY",
    "IMAGENET_MEAN", "IMAGENET_STD", "PCA_ALPHA_STD", "PCA_EIGVAL", "PCA_EIGVEC", "check_folder_classes",
    "check_image_folder", "check_images_decode", "check_manual_download", "check_paths", "check_split_spec",
    "check_splits", "check_tfds_source", "cifar_train", "damaged_image", "decode", "decode_window", "digits_arrays",
    "flat_examples", "imagenet_eval", "imagenet_train", "is_folder", "is_jpeg", "lighting_shift", "load",
    "load_digits", "load_folder", "load_tfds", "normalize", "pad_and_crop", "pca_lighting", "preprocessors",
    "prepared_builder", "random_resized_crop", "resize_only", "shuffled", "split_names", "to_float",
    "undecodable_images", "SplitFiles",
]
