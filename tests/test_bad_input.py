"""Off the happy path (issue 15): every bad input is a clear error naming the
file or flag at fault, with a non-zero exit, no traceback, and nothing lost
or changed; weights load all or nothing.

The commands are called in-process (their ``main``), which is what a
subprocess would run, minus TensorFlow's start-up per case."""

import hashlib
import re
import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data, weights, zoo
from ir2net_tf.runs import artifacts, model_dir as model_dirs, recipes, run

SMALL = ["--image_size=8", "--batch_size=32", "--epochs=1", "--verbose=0"]


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


def export_cli(capsys, *args):
    from ir2net_tf.export.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's refusal while parsing, as the process would exit
        code = exit.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def zoo_cli(capsys, *args):
    from ir2net_tf.catalog.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's refusal while parsing, as the process would exit
        code = exit.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def digits_settings(**overrides):
    given = dict(image_size=8, batch_size=32, epochs=1)
    given.update(overrides)
    return dict(recipes.resolve("digits", given), data_dir=None, manual_dir=None)  # as the command line's


def fake_run(folder, settings, *, stages=("2",), metrics=None):
    """A model directory as a run of ours leaves it (without training)."""
    os.makedirs(os.path.join(folder, artifacts.CHECKPOINTS, "stage2"), exist_ok=True)
    os.makedirs(os.path.join(folder, artifacts.LOGS, "stage2", "train"), exist_ok=True)
    open(os.path.join(folder, artifacts.CHECKPOINTS, "stage2", "ckpt-1.index"), "wb").write(b"x")
    open(os.path.join(folder, artifacts.LOGS, "stage2", "train", "events.out.tfevents.1.host"), "wb").write(b"x")
    config = model_dirs.model_config(settings, 10, True, list(stages))
    artifacts.write_json(os.path.join(folder, artifacts.CONFIG), config)
    for row in metrics or [dict(stage="2", epoch=1, val_accuracy=0.5)]:
        artifacts.write_metric_row(os.path.join(folder, artifacts.METRICS), row)


# ---------------------------------------------------------------- weights


@pytest.fixture(scope="module")
def recovery_weights(tmp_path_factory):
    """Weights of IR2ResNet20 at 8×8 with its recovery head, in each format."""
    folder = tmp_path_factory.mktemp("weights")
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    paths = {}
    for suffix in (".weights.h5", ".h5"):
        paths[suffix] = str(folder / f"recovery{suffix}")
        model.save_weights(paths[suffix])
    paths[".keras"] = str(folder / "recovery.keras")
    model.save(paths[".keras"])
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_weights_of_another_model_load_nothing(recovery_weights, suffix):
    """The silent partial load under the issue's shipped-wrong-model case:
    recovery-head weights into a model without the head."""
    bare = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10, recovery=False)
    before = [w.copy() for w in bare.get_weights()]
    path = recovery_weights[suffix]
    with pytest.raises(ValueError, match="does not fit model") as error:
        weights.load_weights(bare, path)
    assert path in str(error.value) and "Nothing was loaded" in str(error.value)
    if suffix != ".h5":  # named by layer for the formats that name their layers
        assert "layers the model does not have" in str(error.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, bare.get_weights()))
    if suffix == ".weights.h5":  # the zoo builders' weights= too
        with pytest.raises(ValueError, match="does not fit model"):
            zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10, recovery=False, weights=path)


@pytest.mark.slow
def test_matching_weights_load_completely(recovery_weights):
    source = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    source.load_weights(recovery_weights[".weights.h5"])
    twin = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10,
                     weights=recovery_weights[".weights.h5"])
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), twin.get_weights()))


def test_a_compiled_models_training_state_is_not_a_mismatch(tmp_path):
    """Optimizer and metric variables in the file are not model weights."""
    def dense():
        inputs = tf.keras.Input((4,))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))

    trained = dense()
    trained.compile("adam", "mse")
    trained.optimizer.build(trained.trainable_variables)  # its state, without a (slow) fit
    path = str(tmp_path / "compiled.weights.h5")
    trained.save_weights(path)
    import h5py

    with h5py.File(path, "r") as f:
        assert "optimizer" in f
    fresh = dense()
    weights.load_weights(fresh, path)
    assert all(np.array_equal(a, b) for a, b in zip(trained.get_weights(), fresh.get_weights()))


def test_export_refuses_partial_weights(recovery_weights, tmp_path, capsys):
    """The issue's command: --no-recovery with a recovery run's weights."""
    before = snapshot(tmp_path)
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "8", "--no-recovery",
                              "--weights", recovery_weights[".weights.h5"], "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and recovery_weights[".weights.h5"] in err and "does not have" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all"])
def test_damaged_weights_file_is_named(tmp_path, content):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(content)
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    with pytest.raises(ValueError, match="cannot be read") as error:
        weights.load_weights(model, str(path))
    assert str(path) in str(error.value)


# ---------------------------------------------------------------- --overwrite and the model directory


def test_overwrite_never_deletes_a_directory_that_is_not_a_run(tmp_path, capsys):
    """The issue's data loss: the user's own config.json and logs/."""
    folder = tmp_path / "mine"
    (folder / "logs").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"lr": 0.1}))
    (folder / "logs" / "notes.txt").write_text("my notes")
    before = snapshot(folder)
    code, _, err = train_cli(capsys, *SMALL, f"--model_dir={folder}", "--overwrite")
    assert code == 1 and "config.json" in err and "not written by `python -m train`" in err
    assert snapshot(folder) == before


def test_overwrite_refuses_a_run_mixed_with_other_files(tmp_path, capsys):
    folder = str(tmp_path / "run")
    fake_run(folder, digits_settings(epochs=2))
    open(os.path.join(folder, "notes.txt"), "w").write("mine")
    open(os.path.join(folder, artifacts.LOGS, "plot.py"), "w").write("mine")
    before = snapshot(folder)
    code, _, err = train_cli(capsys, *SMALL, f"--model_dir={folder}", "--overwrite")
    assert code == 1 and "notes.txt" in err and os.path.join("logs", "plot.py") in err
    assert "Nothing was deleted" in err
    assert snapshot(folder) == before


def test_overwrite_deletes_exactly_our_run(tmp_path):
    folder = str(tmp_path / "run")
    fake_run(folder, digits_settings(epochs=2))
    for name in ("model.tflite", "model.json", artifacts.BEST_WEIGHTS, artifacts.stage_weights("2", "final")):
        open(os.path.join(folder, name), "wb").write(b"x")
    with pytest.raises(ValueError, match="holds a different run"):
        model_dirs.check_or_reset(folder, digits_settings(), overwrite=False)
    assert model_dirs.check_or_reset(folder, digits_settings(), overwrite=True) == {}
    assert os.listdir(folder) == []


def test_a_run_that_never_started_does_not_block_a_corrected_command(tmp_path):
    folder = str(tmp_path / "run")
    os.makedirs(folder)
    config = model_dirs.model_config(digits_settings(batch_size=5000), 10, True, [])
    artifacts.write_json(os.path.join(folder, artifacts.CONFIG), config)
    assert model_dirs.check_run(folder, digits_settings(), overwrite=False) == ({}, True)


def test_stage_1_rerun_reports_stage_1(tmp_path, capsys):
    folder = str(tmp_path / "run")
    settings = digits_settings(stage="both")
    fake_run(folder, settings, stages=("1", "2"), metrics=[
        dict(stage="1", epoch=1, val_accuracy=0.25), dict(stage="2", epoch=1, val_accuracy=0.75)])
    code, out, err = train_cli(capsys, *SMALL, f"--model_dir={folder}", "--stage=1")
    assert code == 0, err
    assert "final 25.00 %" in out


# ---------------------------------------------------------------- python -m train's flags


# Each flag's own range (--epochs=0, --momentum=1.5, NaN, ...): exit 2 while
# parsing, tests/test_flag_domains.py (generated from the definitions). Here:
# what only the combination of flags, the model or the files decide.
@pytest.mark.parametrize("args, flag", [
    (["--epochs=0"], "--epochs"),
    (["--image_size=10"], "multiples of 4"),
    (["--model=IR2ResNet18"], "multiples of 32"),
    (["--init_weights=/no/such.weights.h5"], "--init_weights"),
    (["--teacher=/no/such/teacher.keras"], "--teacher '/no/such/teacher.keras' does not exist"),
    (["--teacher=ResNet"], "Unknown teacher 'ResNet'"),
    (["--stage=1", "--init_weights=x.weights.h5"], "--init_weights"),
    (["--weights=x.weights.h5"], "--weights"),
    (["--mode=evaluate", "--epochs=3"], "--epochs"),
    (["--dataset=./no_such_folder/"], "--dataset"),
    (["--dataset=cifar10", "--data_dir=/no/such/tfds"], "--data_dir"),
])
def test_bad_flags_are_refused_before_any_file(tmp_path, capsys, args, flag):
    folder = tmp_path / "run"
    code, _, err = train_cli(capsys, *SMALL, *args, f"--model_dir={folder}")
    # A flag's own domain or path rule (flag_domains, path_args): exit 2 while parsing.
    parsing = args == ["--epochs=0"] or args[-1].split("=")[0] in ("--init_weights", "--weights", "--data_dir")
    assert code == (2 if parsing else 1) and flag in err, err
    assert "Unknown variant None" not in err
    assert not folder.exists()


# ---------------------------------------------------------------- python -m export's arguments


@pytest.mark.parametrize("args, flag", [
    (["--input-size", "16"], "--input-size"),
    (["--pad-values", "1"], "--pad-values"),
    (["--num-classes", "5"], "--num-classes"),
    (["--no-recovery"], "--no-recovery"),
])
def test_export_model_dir_refuses_flags_it_would_ignore(tmp_path, capsys, args, flag):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = snapshot(folder)
    code, _, err = export_cli(capsys, "--model-dir", str(folder), *args)
    assert code == 2 and flag in err and "ignored" in err
    assert snapshot(folder) == before


def test_reversed_int8_range_is_refused(tmp_path, capsys):
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--int8-range", "5", "-5",
                              "-o", str(tmp_path / "m.tflite"))
    assert code == 2 and "--int8-range" in err and "MIN < MAX" in err
    assert os.listdir(tmp_path) == []


def test_failed_reexport_removes_the_stale_tflite(tmp_path):
    """The write-out of an export whose checks failed, after an earlier
    export to the same path: report and files agree."""
    from ir2net_tf.export import cli

    output = tmp_path / "model.tflite"
    output.write_bytes(b"an earlier export")
    result = {"ok": False, "failure": "top-1 agreement 10 % < 99 %", "tflite": str(output)}
    cli.write_out(str(output), b"new flatbuffer", result)
    report = json.loads((tmp_path / "model.json").read_text())
    assert report["tflite"] is None and "removed" in report["failure"] and not output.exists()
    cli.write_out(str(output), b"new flatbuffer", {"ok": True, "failure": None, "tflite": str(output)})
    assert output.read_bytes() == b"new flatbuffer"
    assert json.loads((tmp_path / "model.json").read_text())["tflite"] == str(output)


# ---------------------------------------------------------------- data


def _write_png(path, value=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(np.full((6, 6, 3), value, np.uint8)))


def _folder(root, classes=("a", "b"), per_class=10):
    for c in classes:
        for i in range(per_class):
            _write_png(os.path.join(root, c, f"{i}.png"), 20 * i)


def test_damaged_images_are_named_before_training(tmp_path, capsys):
    root = str(tmp_path / "pets")
    _folder(root)
    truncated = os.path.join(root, "a", "0.png")
    with open(truncated, "rb") as f:
        content = f.read()
    open(truncated, "wb").write(content[: len(content) // 2])
    text = os.path.join(root, "b", "notes.jpg")
    open(text, "w").write("not an image")
    code, _, err = train_cli(capsys, *SMALL, f"--dataset={root}/", f"--model_dir={tmp_path}/run")
    assert code == 1 and f"{truncated} (truncated)" in err and f"{text} (not a JPG image)" in err


def test_one_class_folder_is_refused(tmp_path):
    root = str(tmp_path / "one")
    _folder(root, classes=("only",))
    with pytest.raises(ValueError, match="1 class folder.*at least 2"):
        data.load(root, image_size=8)


def test_empty_split_is_refused(tmp_path):
    root = str(tmp_path / "split")
    _folder(os.path.join(root, "train"))
    os.makedirs(os.path.join(root, "validation", "a"))
    with pytest.raises(ValueError, match="'validation' split .* holds no images"):
        data.load(root, image_size=8)


def test_folder_datasets_leave_no_temporary_directory(tmp_path):
    pattern = lambda: {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("ir2net_folder_")}  # noqa: E731
    before = pattern()
    root = str(tmp_path / "flat")
    _folder(root)
    dataset = data.load(root, image_size=8)
    assert dataset.train_examples == 18
    assert sum(len(y) for _, y in dataset.evaluation(4)) == 2  # read while the data set is in use
    with pytest.raises(ValueError):
        data.load(str(tmp_path / "one"), image_size=8)  # does not exist
    _folder(str(tmp_path / "few"), per_class=2)
    with pytest.raises(ValueError, match="needs at least"):
        data.load(str(tmp_path / "few"), image_size=8)  # fails after the view was made
    assert pattern() == before


def test_missing_data_dir_is_not_created(tmp_path):
    missing = tmp_path / "tfds"
    with pytest.raises(ValueError, match="--data_dir .* does not exist"):
        data.load("mnist", image_size=8, data_dir=str(missing))
    assert not missing.exists()


def test_offline_fails_fast_with_the_advice(tmp_path, monkeypatch):
    monkeypatch.setattr("ir2net_tf.data.sources.tfds._online", lambda timeout=5.0: False)
    with pytest.raises(ValueError, match="offline.*--data_dir"):
        data.load("mnist", image_size=8, data_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 8, 8, 4), np.uint8), "4 channels"),
    (np.zeros((0, 8, 8, 3), np.uint8), "holds no images"),
    (np.full((4, 8, 8, 3), 200.0, np.float32), "0–255"),
    ({"x": np.zeros((4, 8, 8, 3), np.uint8), "y": np.zeros(3, np.int64)}, "4 images but 3 labels"),
    (b"corrupt", "cannot be read"),
])
def test_bad_image_arrays_are_named(tmp_path, capsys, array, message):
    suffix = ".npz" if isinstance(array, (dict, bytes)) else ".npy"
    path = str(tmp_path / f"images{suffix}")
    if isinstance(array, dict):
        np.savez(path, **array)
    elif isinstance(array, bytes):
        open(path, "wb").write(array)
    else:
        np.save(path, array)
    code, _, err = zoo_cli(capsys, "show-restriction", "--model", "IR2ResNet20", "--input_size", "8",
                           "--images", path, "--output_dir", str(tmp_path / "out"))
    assert code == 2 and path in err and message in err, err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the rest


def _saved(path, shape=(8, 8, 3), outputs=10, rank=2):
    inputs = tf.keras.Input(shape)
    x = tf.keras.layers.GlobalAveragePooling2D()(inputs) if rank == 2 else inputs
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(outputs)(x))
    model.save(path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("size", "takes inputs of shape (16, 16, 3)"),
    ("channels", "takes inputs of shape (8, 8, 1)"),
    ("rank", "outputs [(None, 8, 8, 10)]"),
    ("not_a_model", "is not a saved Keras model"),
])
def test_unusable_teacher_is_named(tmp_path, kind, message):
    from ir2net_tf.runs.teacher import load_teacher

    path = str(tmp_path / "teacher.keras")
    if kind == "size":
        _saved(path, shape=(16, 16, 3))
    elif kind == "channels":
        _saved(path, shape=(8, 8, 1))
    elif kind == "rank":
        _saved(path, rank=4)
    else:
        open(path, "w").write("hello")
    with pytest.raises(ValueError) as error:
        load_teacher(path, (8, 8, 3), 10)
    assert path in str(error.value) and message in str(error.value), str(error.value)


def test_empty_pytorch_checkpoint_is_named(tmp_path, capsys):
    path = tmp_path / "empty.pth.tar"
    path.write_bytes(b"")
    code, _, err = zoo_cli(capsys, "import-pytorch", str(path), "-o", str(tmp_path / "out.weights.h5"))
    assert code != 0 and str(path) in err
    assert sorted(os.listdir(tmp_path)) == ["empty.pth.tar"]


def test_a_model_dir_that_is_a_file_is_named(tmp_path, capsys):
    taken = tmp_path / "run"
    taken.write_text("not a folder")
    code, _, err = train_cli(capsys, *SMALL, f"--model_dir={taken}")
    assert code == 2 and "--model_dir" in err and "is a file, not a folder" in err, err
    assert taken.read_text() == "not a folder"


def test_run_refuses_bad_settings_before_touching_the_directory(tmp_path):
    """The library's Run checks the same ranges as the command line."""
    with pytest.raises(ValueError, match="--epochs must be an integer ≥ 1"):
        run.Run(digits_settings(epochs=0), model_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# ================================================================ second round (issue 20): external state, NaN, files


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
    from ir2net_tf import files
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


def test_nan_images_are_bad_input_and_keep_the_earlier_export(tmp_path, capsys):
    output = tmp_path / "model.tflite"
    output.write_bytes(b"a verified earlier export")
    (tmp_path / "model.json").write_text('{"tflite": "model.tflite"}')
    before = snapshot(tmp_path)
    from ir2net_tf.export import inputs

    images = np.zeros((4, 16, 16, 3), np.float32)
    images[1, 2, 3, 0] = np.nan
    path = str(tmp_path / "bad.npy")
    np.save(path, images)
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "16", "--images", path,
                              "-o", str(output), "--latency-runs", "0")
    assert code == 2 and path in err and "1 NaN or infinite" in err, err
    os.remove(path)
    assert snapshot(tmp_path) == before
    images[1, 2, 3, 0] = -np.inf  # not "pixels beyond ±3": not numbers
    with pytest.raises(inputs.DeployError, match="1 NaN or infinite"):
        inputs.check_array(path, images, None)


def test_ctrl_c_during_export_writes_nothing(tmp_path, capsys, monkeypatch):
    from ir2net_tf.export import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_model", interrupted)  # Ctrl-C wherever export's work is
    code, _, err = export_cli(capsys, "--model", "IR2ResNet20", "--input-size", "16", "--evaluate", "digits",
                              "-o", str(tmp_path / "m.tflite"))
    assert code == 130 and err.strip() == "Interrupted (Ctrl-C); nothing was written." and os.listdir(tmp_path) == []


def test_evaluate_refuses_what_is_not_this_models_tflite():
    from ir2net_tf import deploy, evaluation

    def dense(size):
        inputs = tf.keras.Input((size, size, 3))
        return tf.keras.Model(inputs, tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(inputs)))

    model, other = dense(8), deploy.convert(dense(16))
    digits = data.load("digits", image_size=8)
    for flatbuffer, message in ((b"garbage" * 20, "not a .tflite file"), (other, "another model's.*16, 16, 3")):
        with pytest.raises(ValueError, match=message):
            evaluation.evaluate(model, digits, flatbuffer=flatbuffer, progress=False)
    with pytest.raises(ValueError, match="--image_size must be an integer ≥ 1; got 0"):
        data.load("digits", image_size=0)
    with pytest.raises(ValueError, match="--batch_size must be an integer ≥ 1"):
        evaluation.evaluate(model, digits, batch_size=0, progress=False)


def test_a_directory_named_like_an_image_is_named(tmp_path):
    root = str(tmp_path / "pets")
    _folder(root)
    trap = os.path.join(root, "a", "trap.png")
    os.makedirs(trap)
    with pytest.raises(ValueError, match=f"{trap} \\(a directory, not an image file\\)"):
        data.load(root + "/", image_size=8)


def test_tensorflow_imported_before_the_legacy_keras_switch_is_named(monkeypatch):
    from ir2net_tf import _keras2

    assert tf._tf_uses_legacy_keras is True  # what TensorFlow recorded at its import
    monkeypatch.setattr(tf, "_tf_uses_legacy_keras", False)
    with pytest.raises(ImportError, match="TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set"):
        _keras2.ensure_legacy_keras()


def test_stage_1_only_run_and_hdf5_named_bin_are_explained(tmp_path, capsys, recovery_weights):
    import shutil

    folder = tmp_path / "run"
    fake_run(folder, digits_settings(stage="both"), stages=())
    (folder / "stage1_best.weights.h5").write_bytes(b"x")
    code, _, err = export_cli(capsys, "--model-dir", str(folder), "--no-verify", "--latency-runs", "0")
    assert code == 2 and "stopped during stage 1" in err and "stage1_best.weights.h5" in err, err
    misnamed = str(tmp_path / "weights.bin")
    shutil.copy(recovery_weights[".weights.h5"], misnamed)
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    with pytest.raises(ValueError, match=r"is an HDF5 weights file.*Rename it to end in \.weights\.h5"):
        weights.load_weights(model, misnamed)


# ---------------------------------------------------------------- python -m zoo


def test_benchmark_cache_dir_that_is_a_file_is_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").write_text("a file")
    code, _, err = zoo_cli(capsys, "benchmark", "--models", "IR2ResNet20-A", "--cache_dir", "cache",
                           "--output_dir", "out")
    assert code == 2 and "--cache_dir" in err and "is a file" in err, err
    assert sorted(os.listdir(tmp_path)) == ["cache"]


def test_benchmark_names_an_empty_cached_tflite(tmp_path):
    from ir2net_tf.catalog import benchmark

    entry = next(e for e in benchmark.entries() if e.name == "IR2ResNet20-A")
    cached = tmp_path / "IR2ResNet20-A_32.tflite"
    cached.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{cached} \\(--cache_dir\\) is empty; delete it"):
        benchmark._flatbuffer(entry, None, str(tmp_path), 32)


def _torch_state(**tensors):
    """A state dict of the reference ResNet-18 layout (4 blocks per stage) with ``tensors``."""
    torch = pytest.importorskip("torch")
    state = {f"module.layer{s}.{b}.conv1.weight": torch.zeros(2, 2, 3, 3) for s in range(1, 5) for b in range(4)}
    state["module.fc.weight"] = torch.zeros(10, 4)
    state["module.fusion.weight"] = torch.zeros(4, 4, 1, 1)
    state.update({f"module.{k}": v for k, v in tensors.items()})
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize("case, key, message", [
    ("cheap without primary", "fusion.primary_conv.0.weight", "has no 'fusion.primary_conv.0.weight'"),
    ("0-d fc.weight", "fc.weight", r"'fc.weight' has shape \(\)"),
    ("zero-size fusion weight", "fusion.cheap_operation.0.weight", "is empty"),
    ("NaN", "layer1.0.conv1.weight", "NaN or infinite"),
    ("inf", "fc.weight", "NaN or infinite"),
])
def test_malformed_pytorch_state_dicts_are_named(tmp_path, capsys, case, key, message):
    torch = pytest.importorskip("torch")
    nan = torch.zeros(2, 2, 3, 3)
    nan[0, 0, 0, 0] = float("nan")
    tensors = {
        "cheap without primary": {"fusion.weight": None, "fusion.cheap_operation.0.weight": torch.zeros(4, 1, 3, 3)},
        "0-d fc.weight": {"fc.weight": torch.tensor(1.0)},
        "zero-size fusion weight": {"fusion.weight": None, "fusion.cheap_operation.0.weight": torch.zeros(0, 1, 3, 3),
                                    "fusion.primary_conv.0.weight": torch.zeros(4, 4, 1, 1)},
        "NaN": {"layer1.0.conv1.weight": nan},
        "inf": {"fc.weight": torch.full((10, 4), float("inf"))},
    }[case]
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": _torch_state(**tensors)}, path)
    code, _, err = zoo_cli(capsys, "import-pytorch", str(path), "-o", str(tmp_path / "out.weights.h5"))
    assert code == 2 and key in err and re.search(message, err), err
    assert os.listdir(tmp_path) == ["checkpoint.pth.tar"]


# ---------------------------------------------------------------- clusters


def test_cluster_configurations_that_cannot_work_are_named(monkeypatch):
    import socket

    from ir2net_tf.runs import distribute

    ps = '{"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}'
    with pytest.raises(distribute.ClusterError, match=r"\['ps'\]: parameter servers \('ps'\) .* not supported"):
        distribute.check_tf_config(ps)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name in distribute.SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    with pytest.raises(distribute.ClusterError, match="SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE not"):
        distribute.cluster_resolver()
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node1")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "2")
    monkeypatch.setenv("SLURM_PROCID", "zero")
    with pytest.raises(distribute.ClusterError, match="SLURM_PROCID='zero' is not a whole number"):
        distribute.cluster_resolver()
    # This worker's port taken by another process.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
                                                    "task": {"type": "worker", "index": 0}}))
        with pytest.raises(distribute.ClusterError, match=f"Port {port} of this worker's address .* in use"):
            distribute.check_port_free(distribute.cluster_resolver())


@pytest.mark.slow
def test_ctrl_c_while_workers_wait_ends_at_once(tmp_path):
    """Ctrl-C (to the process group, as a terminal sends it) while worker 0
    waits for an absent worker 1: it ends within seconds, not after
    --cluster_timeout, with one line and no traceback."""
    import signal
    import subprocess
    import sys
    import time

    from tests_support import ENV, REPO

    with __import__("socket").socket() as a, __import__("socket").socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        ports = [a.getsockname()[1], b.getsockname()[1]]
    env = dict(ENV, TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": 0}}))
    worker = subprocess.Popen([sys.executable, "-m", "train", *SMALL, "--strategy=multi_worker",
                               f"--model_dir={tmp_path}/run"], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    children = f"/proc/{worker.pid}/task/{worker.pid}/children"
    while time.time() < deadline and worker.poll() is None:  # the watchdog starts when the wait does
        if open(children).read().strip():
            break
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(worker.pid, signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGINT, err[-3000:]
    assert "Interrupted (Ctrl-C) while worker worker:0 waited for the cluster" in err and "Traceback" not in err
