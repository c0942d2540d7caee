"""Shared test helpers."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The reference's trainable parameter counts (docs/architectures.md).
REFERENCE_PARAMS = {
    ("IR2ResNet18", "A"): 12_220_264,
    ("IR2ResNet18", "B"): 11_960_424,
    ("IR2ResNet18", "C"): 11_882_344,
    ("IR2ResNet18", "D"): 11_727_070,
    ("IR2ResNet34", "A"): 22_332_136,
    ("IR2ResNet34", "B"): 22_072_296,
    ("IR2ResNet34", "C"): 21_994_216,
    ("IR2ResNet34", "D"): 21_838_942,
    ("IR2ResNet20", None): 272_458,
    ("IR2ResNet18CIFAR", None): 11_207_096,
    ("IR2VGGSmall", None): 4_675_834,
}

# python -m train runs in tests.
ENV = dict(os.environ)
# Digits at 8×8 (IR2ResNet20's smallest input), batch 32: 44 steps an epoch.
SMALL = ["--image_size=8", "--batch_size=32", "--epochs=2", "--verbose=0"]
STEPS = 1437 // 32
# One epoch of it: the bad-input tests' commands, refused before training or
# over a fake run.
SMALL_ONE_EPOCH = ["--image_size=8", "--batch_size=32", "--epochs=1", "--verbose=0"]


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "train", *args], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def checkpoint_state(directory):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(directory))
    iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")), int(
        reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")), int(reader.get_tensor(iterations))


def kill_mid_epoch_and_resume(args, ckpt_dir, on_kill=None):
    """Runs ``python -m train *args``, SIGKILLs it right after a mid-epoch
    checkpoint in ``ckpt_dir``, calls ``on_kill()`` if given, then runs the
    same command to the end.

    Returns:
        (checkpoint_state at the kill, the resumed run's stderr).
    """
    process = cli(*args)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        if latest and int(latest.rsplit("-", 1)[1]) % STEPS:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before a mid-epoch checkpoint: " + process.communicate()[1][-2000:]
    process.send_signal(signal.SIGKILL)
    process.communicate()
    killed_at = checkpoint_state(ckpt_dir)
    if on_kill is not None:
        on_kill()
    resumed = cli(*args)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    return killed_at, err


def check_metrics_match_evaluate(model_dir, stage):
    """Every accuracy of ``stage``'s rows in [0, 1]; the last row's equal to
    a one-process evaluate of the weights it describes (final.weights.h5)."""
    from ir2net_tf.runs import api, artifacts

    rows = artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))
    mine = [r for r in rows if r["stage"] == stage]
    assert mine, rows
    for row in rows:
        for key in ("accuracy", "top5", "val_accuracy", "val_top5"):
            if row.get(key):
                assert 0.0 <= float(row[key]) <= 1.0, (key, row)
    result = api.evaluate(model_dir, weights=os.path.join(model_dir, artifacts.FINAL_WEIGHTS), verbose=0)
    one_example = 1.0 / result["examples"] + 1e-6
    assert abs(float(mine[-1]["val_accuracy"]) - result["top1"]) <= one_example, (mine[-1], result)
    if mine[-1].get("val_top5"):
        assert abs(float(mine[-1]["val_top5"]) - result["top5"]) <= one_example, (mine[-1], result)


def train_in_process(*flags):
    """``python -m train *flags`` in this process (no TensorFlow start-up)."""
    from ir2net_tf.runs import cli as train_cli

    argv = ["train", *flags]
    try:
        train_cli.FLAGS(argv)
        train_cli.main(argv[:1])
    finally:
        train_cli.FLAGS.unparse_flags()


def weights_file_values(path):
    """Every array in a .weights.h5 file, by its path in the file."""
    import h5py

    values = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: values.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return values


# ---------------------------------------------------------------- the commands in-process, bad input


def snapshot(folder):
    """Every file under ``folder`` (relative path → sha256), to show that
    nothing changed."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def train_cli(capsys, *args):
    """``python -m train ARGS`` in-process: (exit code, stdout, stderr)."""
    from ir2net_tf.runs import cli

    cli.FLAGS.unparse_flags()
    code = 0
    try:
        cli.main(cli.parse_flags(["train", *args]))
    except SystemExit as exit:
        code = exit.code
    finally:
        cli.FLAGS.unparse_flags()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _argparse_cli(capsys, main, args):
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's refusal while parsing, as the process would exit
        code = exit.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def export_cli(capsys, *args):
    from ir2net_tf.export.cli import main

    return _argparse_cli(capsys, main, args)


def zoo_cli(capsys, *args):
    from ir2net_tf.catalog.cli import main

    return _argparse_cli(capsys, main, args)


def digits_settings(**overrides):
    from ir2net_tf.runs import recipes

    given = dict(image_size=8, batch_size=32, epochs=1)
    given.update(overrides)
    return dict(recipes.resolve("digits", given), data_dir=None, manual_dir=None)  # as the command line's


def fake_run(folder, settings, *, stages=("2",), metrics=None):
    """A model directory as a run of ours leaves it (without training)."""
    from ir2net_tf.runs import artifacts, model_dir as model_dirs

    os.makedirs(os.path.join(folder, artifacts.CHECKPOINTS, "stage2"), exist_ok=True)
    os.makedirs(os.path.join(folder, artifacts.LOGS, "stage2", "train"), exist_ok=True)
    open(os.path.join(folder, artifacts.CHECKPOINTS, "stage2", "ckpt-1.index"), "wb").write(b"x")
    open(os.path.join(folder, artifacts.LOGS, "stage2", "train", "events.out.tfevents.1.host"), "wb").write(b"x")
    config = model_dirs.model_config(settings, 10, True, list(stages))
    artifacts.write_json(os.path.join(folder, artifacts.CONFIG), config)
    for row in metrics or [dict(stage="2", epoch=1, val_accuracy=0.5)]:
        artifacts.write_metric_row(os.path.join(folder, artifacts.METRICS), row)
