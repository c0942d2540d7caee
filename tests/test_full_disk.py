"""A full disk (issue 20): checkpoints, weights, metrics and the export's
pair are each written whole or not at all, with one line naming the path."""

import os

import pytest
import tensorflow as tf


from tests_support import snapshot


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """A 512 KiB tmpfs: a disk that fills up. Skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path_factory.mktemp("disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def _free_bytes(folder):
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def _no_temporaries(folder):
    return [n for n in os.listdir(folder) if ".tmp" in n or n.endswith("_temp") or "_temp" in n]


def test_a_full_disk_fails_in_one_line_and_keeps_what_was_there(small_disk, capsys):
    """Checkpoints, weights, metrics, the export's pair: each either written
    whole or not at all, with one line naming the path and the full disk."""
    from ir2net_tf._util import files
    from ir2net_tf.export import cli as export_cli
    from ir2net_tf.runs import checkpoints

    folder = small_disk / "run"
    folder.mkdir()
    # A checkpoint that fits, then one that does not.
    small = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(tf.zeros([1024]))), str(folder / "ckpt"), 3)
    checkpoints.save(small, 1)
    kept = snapshot(folder)
    big = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(tf.zeros([1 << 18]))), str(folder / "ckpt"), 3)
    with pytest.raises(ValueError, match=r"Cannot write .*ckpt.*: No space left on device\. ") as error:
        checkpoints.save(big, 2)
    assert "\n" not in str(error.value) and snapshot(folder) == kept and not _no_temporaries(folder / "ckpt")
    # Weights (h5py's own error) and metrics, over earlier versions.
    weights_path, metrics_path = folder / "best.weights.h5", folder / "metrics.csv"
    files.atomic_write(weights_path, b"earlier weights")
    files.atomic_write(metrics_path, b"epoch,loss\n1,2.0\n")
    kept = snapshot(folder)
    wide = tf.keras.Sequential([tf.keras.Input((256,)), tf.keras.layers.Dense(1024)])  # 1 MiB of weights
    for write in (lambda: files.save_weights(wide, weights_path),
                  lambda: files.atomic_write(metrics_path, b"x" * (1 << 20))):
        with pytest.raises(ValueError, match="No space left on device") as error:
            write()
        assert "\n" not in str(error.value) and snapshot(folder) == kept and not _no_temporaries(folder)
    # The export's .tflite and .json: room for the new .tflite but not its report.
    output = folder / "model.tflite"
    export_cli.write_out(str(output), b"old flatbuffer", {"ok": True, "failure": None, "tflite": str(output)})
    kept = snapshot(folder)
    new = b"n" * (_free_bytes(folder) - 8192)
    with pytest.raises(ValueError, match="No space left on device"):
        export_cli.write_out(str(output), new, {"ok": True, "failure": None, "tflite": str(output), "pad": "p" * 65536})
    assert snapshot(folder) == kept and not _no_temporaries(folder)
