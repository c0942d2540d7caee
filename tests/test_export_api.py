"""export_model from Python, as a user calls it: the README's snippet run from
a directory outside the checkout, on a finished run and on a zoo model; its
errors are one-line ExportErrors; the package imports without TensorFlow."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests_support import REPO

# Run after the README's snippet: its two reports and what it imported, as JSON.
REPORTS = '''
import json as _json
import ir2net_tf as _package
_fields = ("ok", "failure", "tflite", "report_path", "files", "size_bytes", "census", "parity", "agreement",
           "relative_difference", "evaluation", "latency", "warnings")
print("REPORTS " + _json.dumps({name: {f: getattr(r, f) for f in _fields} for name, r in
                                (("run", report), ("zoo", zoo_report))}))
print("PACKAGE " + _package.__file__)
'''


def readme_snippet() -> str:
    """The README's "From Python" code."""
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = text[text.index("### From Python"):]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def _user_env():
    # The checkout's package first, as an install of it would be.
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.slow  # two conversions and their checks: about a minute, plus the digits_run_16 fixture
def test_readme_export_model_from_another_directory(digits_run_16, tmp_path):
    """The snippet exports the demo run (runs/demo here is a finished
    digits run) and a zoo model with random weights; each report's fields
    match the files on disk."""
    (tmp_path / "runs").mkdir()
    os.symlink(digits_run_16, tmp_path / "runs" / "demo")
    process = subprocess.run([sys.executable, "-c", readme_snippet() + REPORTS], cwd=tmp_path, env=_user_env(),
                             capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stderr[-3000:]
    lines = process.stdout.splitlines()
    reports = json.loads(next(line for line in lines if line.startswith("REPORTS "))[len("REPORTS "):])
    package = next(line for line in lines if line.startswith("PACKAGE "))[len("PACKAGE "):]
    assert package.startswith(os.path.join(REPO, "ir2net_tf"))
    assert "LceBconv2d 18 for 18 binary convolutions" in process.stdout  # report.summary()

    run, zoo = reports["run"], reports["zoo"]
    assert run["ok"] and run["failure"] is None, run["failure"]
    assert run["tflite"] == "demo.tflite" and run["report_path"] == "demo.json"
    assert run["files"] == ["demo.tflite", "demo.json"]
    assert run["census"]["ok"] and run["census"]["lce_bconv2d"] == run["census"]["binary_convs_keras"] == 18
    assert set(run["parity"]) == set(run["agreement"]) == {"held-out", "random"}
    assert run["parity"]["held-out"]["samples"] == 360 and run["parity"]["held-out"]["dataset"] == "digits"
    assert run["relative_difference"]["held-out"] <= 1e-3
    assert run["agreement"]["held-out"] == run["parity"]["held-out"]["top1_agreement"]
    assert len(run["latency"]) == 4 and run["warnings"] == [] and run["evaluation"] is None

    assert zoo["ok"], zoo["failure"]
    assert zoo["files"] == ["ir2resnet20.tflite", "ir2resnet20.json"] and zoo["latency"] == []
    assert zoo["census"]["lce_bconv2d"] == 18 and set(zoo["agreement"]) == {"random"}
    assert any("random weights" in w for w in zoo["warnings"])

    assert sorted(os.listdir(tmp_path)) == ["demo.json", "demo.tflite", "ir2resnet20.json", "ir2resnet20.tflite",
                                            "runs"]
    for name, report in reports.items():
        tflite = (tmp_path / report["tflite"]).read_bytes()
        assert tflite[4:8] == b"TFL3" and len(tflite) == report["size_bytes"]
        written = json.loads((tmp_path / report["report_path"]).read_text())
        assert written["ok"] and written["tflite"] == report["tflite"] and written["census"] == report["census"]
    assert json.loads((tmp_path / "ir2resnet20.json").read_text())["random_weights"]


def test_export_model_refuses_bad_input_with_one_line(tmp_path):
    """Bad input raises ExportError (a ValueError), one line, before anything is written."""
    import tensorflow as tf

    from ir2net_tf.export import ExportError, export_model

    inputs = tf.keras.Input((8, 8, 3))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(tf.keras.layers.Flatten()(inputs)))
    cases = [
        ((object(), str(tmp_path / "m.tflite")), {}, "must be a Keras model or a run's folder"),
        ((str(tmp_path / "missing"), None), {}, "model_or_run_dir .* does not exist"),
        ((model, None), {}, "output: give the .tflite path"),
        ((model, str(tmp_path / "m.onnx")), {}, "its name must end in .tflite"),
        ((model, str(tmp_path / "no" / "m.tflite")), {}, "does not exist; create it first"),
        ((model, str(tmp_path / "m.tflite")), {"target": "x86"}, "Unknown target 'x86'"),
        ((model, str(tmp_path / "m.tflite")), {"int8_range": (5, -5)}, "needs MIN < MAX"),
        ((model, str(tmp_path / "m.tflite")), {"kernels": ["fast"]}, "Unknown kernel"),
        ((model, str(tmp_path / "m.tflite")), {"weights": "w.weights.h5"}, "weights and logits apply to a run"),
        ((model, str(tmp_path / "m.tflite")), {"images": str(tmp_path / "none.npy")}, "images .* does not exist"),
    ]
    for args, options, message in cases:
        with pytest.raises(ExportError, match=message) as caught:
            export_model(*args, **options)
        assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_the_export_package_imports_without_tensorflow(tmp_path):
    script = ("import sys, ir2net_tf.export as e; from ir2net_tf.export import ExportError; "
              "print('tensorflow' in sys.modules, callable(e.export_model), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_user_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr[-2000:]
