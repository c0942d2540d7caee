"""One description per model: a variant added to a ModelSpec at run time is
reachable from the builder, the catalog, the training and export commands and
the benchmark, with no other file touched."""

import json

import pytest

from ir2net_tf import zoo
from ir2net_tf.catalog import benchmark
from ir2net_tf.catalog.cli import main as zoo_main
from ir2net_tf.export.cli import main as export_main
from ir2net_tf.nn.recovery import FusionHead
from tests_support import train_in_process

HEAD = FusionHead("compact", ratio=8, cheap_groups="depthwise")


@pytest.fixture
def variant_e():
    spec = zoo.get_spec("IR2ResNet20")
    spec.variants["E"] = zoo.Variant(HEAD, paper_top1=99.9)
    yield spec
    del spec.variants["E"]


@pytest.mark.slow
def test_a_variant_added_at_run_time_is_everywhere(variant_e, tmp_path, capsys):
    # The builder, in any case, and the docstring-independent lookup.
    model = zoo.IR2ResNet20(variant="e")
    assert model.name == "ir2_resnet20_e"
    assert model.get_layer("recovery_fusion_primary_conv").filters == 8  # ceil(64 / 8)

    # python -m zoo list
    assert zoo_main(["list", "--json", "IR2ResNet20"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"paper", "A", "B", "C", "D", "E"} and rows["E"]["paper_top1"] == 99.9

    # The benchmark's model list.
    assert "IR2ResNet20-E" in [entry.name for entry in benchmark.entries()]

    # python -m train: one short epoch of the digits demo with --variant e.
    model_dir = tmp_path / "run"
    train_in_process("--variant=e", f"--model_dir={model_dir}", "--epochs=1", "--image_size=8", "--batch_size=64",
                     "--verbose=0", "--restriction_lambda=0")
    config = json.loads((model_dir / "config.json").read_text())
    assert config["variant"] == "E" and config["stages_completed"] == ["2"]

    # python -m export, from the run and from the zoo.
    assert export_main(["--model-dir", str(model_dir), "--no-verify", "--latency-runs", "0"]) == 0
    output = tmp_path / "e.tflite"
    assert export_main(["--model", "IR2ResNet20", "--variant", "E", "--no-verify", "--latency-runs", "0",
                        "-o", str(output)]) == 0
    assert output.stat().st_size > 10_000


def test_unknown_variant_lists_the_choices(variant_e):
    with pytest.raises(ValueError, match=r"choose one of \['paper', 'A', 'B', 'C', 'D', 'E'\]"):
        zoo.IR2ResNet20(variant="F")
