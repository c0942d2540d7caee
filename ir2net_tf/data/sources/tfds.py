"""tensorflow-datasets as a source: any tfds name, prepared once (downloaded,
or from the files a manual-download dataset such as ImageNet needs:
``imagenet_manual``), read undecoded with a per-epoch order; ``--train_split``
/ ``--validation_split`` slice its splits."""

import os
from typing import Optional

import tensorflow as tf
from absl import logging

from ir2net_tf.data.dataset import EVAL_SPLITS, Dataset, SplitFiles, order_seed, shuffled
from ir2net_tf.data.sources import imagenet_manual


def _mocked(builder) -> bool:
    """tfds.testing.mock_data replaces download_and_prepare: nothing to prepare."""
    return getattr(type(builder).download_and_prepare, "__name__", "") != "download_and_prepare"


def _prepare_tfds(builder, name: str, manual_dir: Optional[str]):
    import tensorflow_datasets as tfds

    if imagenet_manual.is_manual(builder):
        # Nothing is downloaded: no GCS lookup (a network wait offline), and
        # our line instead of tfds' "Downloading and preparing … Unknown size".
        where = imagenet_manual.manual_dir_of(builder, manual_dir)
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


def _split_size(builder, split: str, ds: tf.data.Dataset) -> int:
    splits = builder.info.splits
    if all(n in splits for n in split_names(split)):
        return int(splits[split].num_examples)  # tfds counts slices too
    # Mocked or partial datasets carry no split metadata: count.
    cardinality = int(ds.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(ds.reduce(0, lambda count, _: count + 1))


def _tfds_source(builder, split, *, seed, epoch=None, shards=1, shard=0):
    """The split's examples, undecoded: in epoch ``epoch``'s order, or in file
    order when ``epoch`` is None. With ``shards`` > 1, only the files of
    worker ``shard`` (``SplitFiles.files``: tfds' own ``input_context``
    sharding), in an order of (seed, epoch, shards, shard)."""
    import tensorflow_datasets as tfds

    order = None if epoch is None else order_seed(seed, epoch, shards, shard)
    context = None
    if shards > 1:
        context = tf.distribute.InputContext(num_input_pipelines=shards, input_pipeline_id=shard)
    read_config = tfds.ReadConfig(shuffle_seed=order, interleave_cycle_length=16, input_context=context)
    ds = builder.as_dataset(
        split=split,
        shuffle_files=epoch is not None,
        as_supervised=True,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    if epoch is not None:
        ds = shuffled(ds, 10_000, seed, epoch, shards, shard)
    return ds


def split_files(builder, split: str, seed: int) -> Optional[SplitFiles]:
    """The files of ``split`` (a spec: slices too) with their examples, from
    the counts tfds stores; None when tfds knows none (mocked data)."""
    try:
        instructions = builder.info.splits[split].file_instructions
    except Exception:  # noqa: BLE001 — no split metadata (tfds.testing.mock_data), each tfds its own error
        return None
    lengths = tuple(int(i.take) for i in instructions)
    if not lengths or _mocked(builder):
        return None
    return SplitFiles(split, lengths, lambda shards, shard, epoch: _tfds_source(
        builder, split, seed=seed, epoch=epoch, shards=shards, shard=shard))


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
        train_files=split_files(builder, train_split, seed), eval_files=split_files(builder, eval_split, seed),
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
    manual download are checked by imagenet_manual instead)."""
    if os.path.exists(os.path.join(str(builder.data_dir), "dataset_info.json")):
        return
    if _mocked(builder) or imagenet_manual.is_manual(builder) or _online():
        return
    where = data_dir or str(builder._data_dir_root)
    raise ValueError(
        f"Dataset {name!r} is not prepared in {where} and this machine is offline ({_DOWNLOAD_HOST[0]} "
        "does not answer). Connect to the internet, or pass --data_dir pointing at a directory where it "
        "is already prepared."
    )


def check_data_dir(name: str, data_dir: Optional[str]) -> None:
    """``data_dir``, when given, exists (nothing is created for a mistyped path)."""
    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
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
    """imagenet_manual.check_files, telling of a partial preparation; returns
    why that one is partial (None if there is none)."""
    why = f"splits {splits} only: a file was missing when it was prepared" if _partial(splits) else None
    imagenet_manual.check_files(builder, name, where, partial=why and f"{builder.data_dir} ({why})")
    return why


def check_manual_download(name: str, data_dir: Optional[str], manual_dir: Optional[str]) -> None:
    """Before any file is written (``python -m train`` checks settings
    first): the tfds dataset ``name``, if it needs a manual download and
    still has to be prepared, has its files in place."""
    if data_dir and not os.path.isdir(os.path.expanduser(data_dir)):
        return
    builder = _builder(name, data_dir)
    if _mocked(builder) or not imagenet_manual.is_manual(builder):
        return
    splits = imagenet_manual.prepared_splits(builder)
    if splits is None or _partial(splits):
        _check_manual_files(builder, name, imagenet_manual.manual_dir_of(builder, manual_dir), splits)


def prepared_builder(name, *, data_dir, manual_dir, train_split=None, validation_split=None):
    """The tfds builder of ``name``, prepared with every split training needs.

    A manual-download dataset is prepared only when all its files are in
    place; a prepared copy lacking a needed split (a file was missing when
    it was prepared) is removed and prepared again once the files are there,
    so the same command works after the user fixes the layout."""
    check_data_dir(name, data_dir)
    _quiet_tfds()
    builder = _builder(name, data_dir)
    if _mocked(builder):
        return builder
    manual = imagenet_manual.is_manual(builder)
    where = imagenet_manual.manual_dir_of(builder, manual_dir)
    splits = imagenet_manual.prepared_splits(builder)
    if manual and _partial(splits):
        why = _check_manual_files(builder, name, where, splits)
        imagenet_manual.remove_prepared(builder, why)
        builder, splits = _builder(name, data_dir), None
    if splits is None:
        check_tfds_source(builder, name, data_dir)
        if manual:
            _check_manual_files(builder, name, where, splits)
            imagenet_manual.warn_short_files(builder, where)
        _prepare_tfds(builder, name, manual_dir)
        splits = [str(s) for s in builder.info.splits]
        missing = _missing_splits(splits, None, None)
        if manual and missing:
            # A builder whose files we do not know prepared what it found.
            imagenet_manual.remove_prepared(builder, f"no {', '.join(missing)} split")
            raise ValueError(
                f"Preparing {name!r} from {where} gave splits {splits}, without {', '.join(missing)}: a file "
                "tfds reads is missing there. tfds' instructions: "
                f"{' '.join(str(builder.MANUAL_DOWNLOAD_INSTRUCTIONS).split())}"
            )
    return builder


def load_tfds(name, *, data_dir, manual_dir, image_size, augment, seed, train_split=None,
              validation_split=None) -> Dataset:
    check_split_spec(train_split, "--train_split")
    check_split_spec(validation_split, "--validation_split")
    builder = prepared_builder(name, data_dir=data_dir, manual_dir=manual_dir, train_split=train_split,
                               validation_split=validation_split)
    return _from_builder(builder, name, image_size, augment, seed, image_size, train_split, validation_split)

