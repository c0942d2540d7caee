"""python -m train and the model directory (issue 15): --overwrite deletes
exactly a run of ours and never anything else, a run that never started
does not block a corrected command, a rerun of a finished stage reports it,
a --model_dir that is a file is named.

The command is called in-process (its ``main``), which is what a subprocess
would run, minus TensorFlow's start-up per case."""

import json
import os

import pytest

from ir2net_tf.runs import artifacts, model_dir as model_dirs

from tests_support import SMALL_ONE_EPOCH as SMALL, digits_settings, fake_run, snapshot, train_cli


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


def test_a_model_dir_that_is_a_file_is_named(tmp_path, capsys):
    taken = tmp_path / "run"
    taken.write_text("not a folder")
    code, _, err = train_cli(capsys, *SMALL, f"--model_dir={taken}")
    assert code == 2 and "--model_dir" in err and "is a file, not a folder" in err, err
    assert taken.read_text() == "not a folder"
