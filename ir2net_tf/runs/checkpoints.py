"""Which checkpoint a run resumes from: the newest one that reads whole.

A machine that dies while writing (full disk, a node lost mid-save on a
network file system) can leave the newest checkpoint truncated; the one
before it is still good, and a run should resume from it rather than fail.
"""

import glob
import os
import re
import shutil
from typing import List, Optional

import tensorflow as tf
from absl import logging


def save(manager: tf.train.CheckpointManager, number: int) -> str:
    """``manager.save``; when it cannot be written (no room on the disk), the
    half-written ``ckpt-N_temp`` folder TensorFlow leaves is removed and the
    error is one line naming the folder (files.OutputError). The checkpoints
    saved before stay, and the run resumes from them."""
    try:
        return manager.save(checkpoint_number=number)
    except tf.errors.OpError as error:
        from ir2net_tf._util.files import cannot_write

        for partial in glob.glob(os.path.join(glob.escape(manager.directory), "ckpt-*_temp*")):
            if os.path.isdir(partial):
                shutil.rmtree(partial, ignore_errors=True)
        if lost_peer(error):
            raise  # not the disk: the run says this worker lost the cluster (run.train_stage)
        reason = "No space left on device" if isinstance(error, tf.errors.ResourceExhaustedError) else error.message
        raise cannot_write(manager.directory, OSError(reason)) from None


# A multi-worker save runs collectives; a worker killed meanwhile aborts them
# with one of these (gRPC's UNAVAILABLE: "Connection reset by peer").
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
               tf.errors.DeadlineExceededError)


def lost_peer(error: tf.errors.OpError) -> bool:
    """Whether a failed save failed because another worker went away."""
    return isinstance(error, PEER_ERRORS) or "Collective ops is aborted" in (error.message or "")


def _first_line(error: BaseException, limit: int) -> str:
    """An error's first line, at most ``limit`` characters: messages stay one line."""
    text = str(error).strip().splitlines()
    return text[0][:limit] if text else ""


def restore(path: str, parts: dict) -> None:
    """Restores the checkpoint ``path`` into ``parts`` (the objects of the
    run's ``tf.train.Checkpoint``), all or nothing. Parts the file does not
    have (it was written before they existed, e.g. ``last_row``) keep their
    initial values.

    Raises:
        ValueError: one line naming the file, when it does not fit the model
            this command builds.
    """
    present = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    checkpoint = tf.train.Checkpoint(**{k: v for k, v in parts.items() if k in present})
    try:
        status = checkpoint.restore(path)
        # The file's own counter (save_counter) is not ours to match: checkpoint
        # numbers are the optimizer's steps. Said, so TensorFlow does not warn.
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(
            f"The checkpoint {path} does not fit the model this command builds ({_first_line(error, 160)}): "
            "it was written with other settings. Repeat the flags the run was started with (its config.json "
            "lists them) to resume it, or pass --overwrite to start afresh, or choose another --model_dir."
        ) from None


def candidates(directory: str) -> List[str]:
    """The checkpoints in ``directory``, newest first: the manager's own list,
    then any others found on disk (by step number)."""
    listed = []
    try:
        state = tf.train.get_checkpoint_state(directory)
        if state is not None:
            listed = [os.path.join(directory, os.path.basename(p)) for p in state.all_model_checkpoint_paths]
    except (tf.errors.OpError, ValueError):  # a damaged state file: fall back to the files
        pass
    on_disk = sorted(
        (p[: -len(".index")] for p in glob.glob(os.path.join(directory, "ckpt-*.index"))),
        key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0),
    )
    ordered = list(reversed(listed)) + [p for p in reversed(on_disk) if p not in listed]
    return ordered


def problem(path: str) -> Optional[str]:
    """Why the checkpoint ``path`` cannot be restored, or None when every
    tensor in it reads."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 — a damaged file fails in many ways (IndexError, DataLossError, ...)
        return f"{type(error).__name__}: {_first_line(error, 200)}"
    return None


def newest_intact(directory: str) -> Optional[str]:
    """The newest checkpoint in ``directory`` that reads whole (logging each
    damaged one skipped), or None when there is none; an error when there are
    checkpoints and none of them reads."""
    damaged = []
    for path in candidates(directory):
        reason = problem(path)
        if reason is None:
            if damaged:
                logging.warning("Resuming from %s, the newest intact checkpoint (skipped: %s).", path,
                                "; ".join(f"{p} is damaged ({r})" for p, r in damaged))
            return path
        damaged.append((path, reason))
    if damaged:
        raise ValueError(
            f"No checkpoint in {directory} can be read ({'; '.join(f'{p}: {r}' for p, r in damaged)}). "
            "Move the checkpoints folder away to restart the stage, or pass --overwrite to start afresh."
        )
    return None
