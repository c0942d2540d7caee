"""python -m zoo list / summary, and the generated table the list reads."""

import json
import os
import subprocess
import sys

import pytest

from ir2net_tf import zoo
from ir2net_tf.catalog import table, verify
from ir2net_tf.catalog.cli import main
from tests_support import REFERENCE_PARAMS, REPO

STORED = {(r["model"], r["variant"]): r for r in table.stored_rows()}


def test_the_table_has_every_model_and_variant_and_what_their_specs_say():
    assert list(STORED) == zoo.model_variants()
    for (name, variant), row in STORED.items():
        described = table.described_row(zoo.get_spec(name), variant)
        assert {k: row[k] for k in described} == described, (name, variant)


@pytest.mark.slow
def test_the_table_matches_built_models_of_ours_and_of_larq_zoo():
    """The counts of the cheapest IR² model and the cheapest larq-zoo network
    (``verify.representatives``), built now, their last variant; every row:
    the slow test below."""
    chosen = [name for name in verify.representatives()
              if zoo.get_spec(name).method == "ir2net"]  # ours (CIFAR, ImageNet) and larq-zoo's
    chosen = [min(chosen, key=lambda n: verify.cost(zoo.get_spec(n)))] + [
        n for n in chosen if zoo.get_spec(n).pretrained]
    for name in chosen:
        variant = list(zoo.get_spec(name).variants)[-1]
        assert table.built_row(name, variant) == STORED[name, variant], (name, variant)


def test_the_table_was_generated_from_todays_model_code_and_libraries():
    """The counts are computed from ``table.SOURCES`` and ``table.LIBRARIES``:
    a table generated before a change to them may be stale."""
    assert table.stored_fingerprint() == table.inputs_fingerprint(), (
        f"the model code or a library changed since the table was generated: run `{table.REGENERATE}`")


@pytest.mark.slow
def test_the_table_is_what_regenerate_writes(tmp_path):
    """Every model and variant built and counted (about 3 minutes on 2 cores):
    the checked-in rows are exactly what `python -m zoo list --regenerate`
    writes. Where the table's inputs are unchanged since it was generated
    (the test above), building is deterministic and the rows are what they
    were, so this runs only when they changed, to name the rows that did."""
    if table.stored_fingerprint() == table.inputs_fingerprint():
        pytest.skip("the table's inputs are unchanged since it was generated")
    path = str(tmp_path / "table.json")
    table.regenerate(path, progress=False)
    changed = [f"{new['model']}:{new['variant']}" for new, old in zip(table.stored_rows(path), STORED.values())
               if new != old]
    assert table.stored_rows(path) == list(STORED.values()), f"stale rows {changed}: run `{table.REGENERATE}`"


def test_reference_counts_specs_and_docs_agree_with_the_table():
    for (name, variant), params in REFERENCE_PARAMS.items():
        key = (name, variant or zoo.get_spec(name).default_variant)
        row = STORED[key]
        assert row["binary_params"] + row["fp_params"] == params == row["params"], key
    for (name, variant), row in STORED.items():
        declared = zoo.get_spec(name).variants[variant].parameters
        assert declared in (None, row["params"]), (name, variant)
    docs = open(os.path.join(REPO, "docs", "architectures.md"), encoding="utf-8").read()
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    for (name, variant), params in REFERENCE_PARAMS.items():
        for text in (docs, readme):  # on a line that names the model
            assert any(name in line and f"{params:,}" in line for line in text.splitlines()), (name, variant)


def test_list_imports_no_tensorflow_and_prints_every_row():
    script = ("import sys; from ir2net_tf.catalog.cli import main; code = main(['list']); "
              "print('TF' if 'tensorflow' in sys.modules else 'no TF'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("no TF")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| IR")]
    assert len(rows) == len(STORED)
    assert "| IR2ResNet18 | C | 224x224 |" in done.stdout
    for name in zoo.MODELS:
        if zoo.get_spec(name).deploy_note:
            assert f"- {name}: {zoo.get_spec(name).deploy_note}" in done.stdout


def test_list_json_and_unknown_names(capsys):
    assert main(["list", "--json", "IR2ResNet18", "IRNetResNet20"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["variant"]) for r in rows] == [("IR2ResNet18", v) for v in "ABCD"] + [
        ("IRNetResNet20", None)]
    assert rows[0]["paper_top1"] == 68.2
    assert main(["list", "IR2ResNet50"]) == 2
    assert "Unknown model 'IR2ResNet50'; choose one of" in capsys.readouterr().err


def test_a_variant_added_in_process_is_listed(capsys, monkeypatch):
    from ir2net_tf.models.spec import Variant
    from ir2net_tf.nn.recovery import FusionHead

    spec = zoo.get_spec("IR2ResNet20")
    monkeypatch.setitem(spec.variants, "E", Variant(FusionHead("compact", ratio=8)))
    assert main(["list", "--json", "IR2ResNet20"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"paper", "A", "B", "C", "D", "E"}
    assert rows["E"]["params"] < rows["paper"]["params"]


@pytest.mark.slow
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
