"""Datasets that tensorflow-datasets cannot download (``MANUAL_DOWNLOAD_INSTRUCTIONS``):
their files checked before tfds prepares anything, and partial preparations
found and redone.

tfds' ImageNet builder prepares whatever split's tar it finds and records the
result as finished: with the 138 GB training tar still downloading it writes a
validation-only dataset, which it then reuses forever. Here a preparation
starts only when every file is in place (named and placed as the builder
reads it), and a prepared dataset that lacks a split training needs is
removed and prepared again once the files are there.
"""

import os
import re
import shutil
from typing import Iterable, Optional

from absl import logging

# The files each builder reads from manual_dir, as tfds 4.8.3's builders name
# them (imagenet2012: Builder._split_generators; the test tar is optional).
MANUAL_FILES = {
    "imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
}
# Suffixes of a download still in progress (browsers, wget, curl, aria2).
_IN_PROGRESS = (".crdownload", ".partial", ".part", ".download", ".aria2", ".tmp")
# A browser's second copy: "name (1).tar", "name-1.tar", "name_1.tar".
_COPY_MARK = re.compile(r"\s*(\(\d+\)|[-_]\d+)(?=\.tar)")
_SEARCH_DEPTH = 2  # folders below manual_dir searched for a misplaced file


def is_manual(builder) -> bool:
    return bool(getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None))


def manual_dir_of(builder, manual_dir: Optional[str]) -> str:
    """Where tfds looks for the files: ``--manual_dir``, else
    ``<data_dir>/downloads/manual`` (DatasetBuilder._make_download_manager)."""
    if manual_dir:
        return os.path.abspath(os.path.expanduser(manual_dir))
    return os.path.join(str(builder._data_dir_root), "downloads", "manual")


def expected_sizes(builder) -> dict:
    """File name → size in bytes, from the builder's checksums (the official
    files' sizes); empty when it ships none."""
    try:
        infos = builder.url_infos or {}
    except Exception:  # noqa: BLE001 — a builder without checksums
        return {}
    return {os.path.basename(str(url)): int(info.size) for url, info in infos.items() if info.size}


def _candidates(root: str) -> Iterable[str]:
    """Files under ``root``, at most ``_SEARCH_DEPTH`` folders down."""
    if not os.path.isdir(root):
        return
    base = root.rstrip(os.sep).count(os.sep)
    for folder, dirs, names in os.walk(root):
        if folder.count(os.sep) - base >= _SEARCH_DEPTH:
            dirs[:] = []
        dirs.sort()
        for name in sorted(names):
            yield os.path.join(folder, name)


def _canonical(name: str) -> str:
    """A file name as it was meant: in-progress suffixes, copy marks,
    compression and case removed (``ILSVRC2012_img_val (1).tar.gz`` →
    ``ilsvrc2012_img_val.tar``)."""
    name = name.lower()
    for suffix in _IN_PROGRESS:
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    name = re.sub(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz)$", ".tar", name)
    return _COPY_MARK.sub("", name)


def misplaced(manual_dir: str, expected: str) -> Optional[str]:
    """What in ``manual_dir`` looks like ``expected`` gone astray (a folder
    too deep, renamed, unfinished, compressed), as advice; None if nothing."""
    target = os.path.join(manual_dir, expected)
    for path in _candidates(manual_dir):
        name = os.path.basename(path)
        if _canonical(name) != expected.lower() or path == target:
            continue
        if name == expected:
            return f"it is one folder too deep, at {path}: move it to {target}"
        if name.lower().endswith(_IN_PROGRESS):
            return f"{path} looks like a download still in progress: let it finish, then name it {target}"
        if re.search(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz)$", name.lower()):
            return (f"{path} is a compressed copy: tfds reads the uncompressed tar image-net.org serves; "
                    f"decompress it to {target}")
        return f"{path} looks like it, renamed (a browser's copy?): rename it to {target}"
    return None


def missing_files(builder, manual_dir: str) -> list:
    """One line per known manual file that is not where the builder reads
    it, with the misplacement found, if any."""
    problems = []
    for expected in MANUAL_FILES.get(builder.name, ()):
        path = os.path.join(manual_dir, expected)
        if os.path.isfile(path):
            continue
        hint = misplaced(manual_dir, expected)
        problems.append(f"{expected} must be at {path}" + (f" ({hint})" if hint else " (it is not there)"))
    return problems


def check_files(builder, name: str, manual_dir: str, *, partial: Optional[str] = None) -> None:
    """Raises a one-line ValueError when the builder's manual files are not
    all in place: which one, the exact path it must have, what was found
    instead. ``partial``: a partly prepared copy, mentioned as what will be
    redone."""
    if builder.name in MANUAL_FILES:
        problems = missing_files(builder, manual_dir)
    elif not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
        # A builder whose files we do not know: at least the folder.
        problems = [f"its files must be in {manual_dir} (empty or missing)"]
    else:
        problems = []
    if not problems:
        return
    redo = (f" The partly prepared copy in {partial} is prepared again then, by the same command."
            if partial else "")
    instructions = " ".join(str(builder.MANUAL_DOWNLOAD_INSTRUCTIONS).split())
    if builder.name in MANUAL_FILES:  # the names are above; only where to get them
        links = re.findall(r"https?://[^\s,;)]+", instructions)
        instructions = f"get them from {links[0].rstrip('.')}" if links else instructions
    raise ValueError(
        f"Dataset {name!r} is never downloaded; it is prepared from files you download yourself: "
        f"{'; '.join(problems)}. Put {'it' if len(problems) == 1 else 'them'} there (or pass --manual_dir, the "
        f"folder that holds them), then run the same command again.{redo} tfds' instructions: {instructions}."
    )


def warn_short_files(builder, manual_dir: str) -> None:
    """A file shorter than the official one is usually still downloading
    (wget and curl write under the final name); tfds would fail at its end."""
    sizes = expected_sizes(builder)
    for expected in MANUAL_FILES.get(builder.name, ()):
        path = os.path.join(manual_dir, expected)
        size = os.path.getsize(path) if os.path.isfile(path) else None
        if size is not None and expected in sizes and size < sizes[expected]:
            logging.warning(
                "%s is %s bytes; image-net.org's is %s. If it is still downloading, stop (Ctrl-C) and run "
                "again when it is complete.", path, f"{size:,}", f"{sizes[expected]:,}")


def prepared_splits(builder) -> Optional[list]:
    """The splits of the prepared dataset, None when none is prepared."""
    if not os.path.exists(os.path.join(str(builder.data_dir), "dataset_info.json")):
        return None
    return [str(s) for s in builder.info.splits]


def remove_prepared(builder, why: str) -> None:
    """Deletes the prepared version folder (tfds' own files only), so that
    tfds prepares it again instead of reusing it."""
    folder = str(builder.data_dir)
    entries = os.listdir(folder)
    if any(os.path.isdir(os.path.join(folder, e)) for e in entries):
        raise ValueError(
            f"The prepared dataset in {folder} is incomplete ({why}) and holds folders tfds does not write; "
            f"nothing was deleted. Remove {folder} yourself, then run the same command again."
        )
    logging.warning("Removing the incomplete dataset in %s (%s); it is prepared again.", folder, why)
    shutil.rmtree(folder)
