"""python -m zoo list / summary."""

import json
import subprocess
import sys


from ir2net_tf import zoo
from ir2net_tf.complexity import complexity
from tests_support import REFERENCE_PARAMS, REPO
from ir2net_tf.catalog.cli import main


def test_list_json_matches_spec_and_complexity(capsys, monkeypatch):
    # Every model but the 14 larq-zoo ones (56 more builds at 224; their rows
    # are listed in tests/test_larq_zoo_backbones.py).
    ours = [(name, variant) for name, variant in zoo.model_variants() if name not in zoo.LARQ_ZOO_MODELS]
    monkeypatch.setattr(zoo, "model_variants", lambda: ours)
    assert main(["list", "--json"]) == 0
    rows = {(r["model"], r["variant"]): r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == sum(len(spec.variants) for spec in zoo.MODELS.values() if spec.name not in zoo.LARQ_ZOO_MODELS)
    for (name, variant), params in REFERENCE_PARAMS.items():
        row = rows[name, variant or "paper"]
        assert row["binary_params"] + row["fp_params"] == params
    measured = complexity(zoo.IR2ResNet18(variant="C"))
    assert rows["IR2ResNet18", "C"]["flops"] == measured.flops
    assert rows["IR2ResNet18", "C"]["deployed_bytes"] == measured.deployed_bytes
    assert rows["IR2ResNet18", "A"]["paper_top1"] == 68.2
    assert rows["IR2ResNet34", "A"]["paper_top1"] is None


def test_summary_and_errors_from_the_command_line():
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "zoo", *args], cwd=REPO, capture_output=True, text=True
    )
    ok = run("summary", "IR2VGGSmall")
    assert ok.returncode == 0, ok.stderr
    assert "recovery_fusion_cheap_conv" in ok.stdout and "Model size" in ok.stdout
    bad = run("summary", "IR2ResNet50")
    assert bad.returncode == 2
    assert "Unknown model 'IR2ResNet50'; choose one of" in bad.stderr
    assert "Traceback" not in bad.stderr
