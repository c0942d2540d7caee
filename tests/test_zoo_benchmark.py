"""python -m zoo benchmark: the real path on a small model, and the ratios."""

import json
import os

import pytest

from ir2net_tf.catalog import benchmark
from ir2net_tf.catalog.cli import main


def test_benchmark_writes_json_markdown_and_plot(tmp_path, capsys):
    out = str(tmp_path / "bench")
    cache = str(tmp_path / "missing" / "cache")  # created when missing
    args = ["benchmark", "--models", "IR2ResNet20-paper", "--train", "--runs", "2", "--rounds", "2", "--threads", "1",
            "--output_dir", out, "--cache_dir", cache]
    assert main(args) == 0
    assert os.listdir(cache) == ["IR2ResNet20-paper_32.tflite"]
    assert main(args) == 0  # the second run reuses the flatbuffer
    assert "reused" in capsys.readouterr().out
    rows = json.load(open(os.path.join(out, "results.json")))["rows"]
    assert [r["model"] for r in rows] == ["IR2ResNet20-paper"]
    row = rows[0]
    assert row["lce_bconv2d"] == 18 and row["tflite_bytes"] > 10_000
    assert row["latency_ms_1t"] > 0 and row["params"] == 272_458
    table = open(os.path.join(out, "results.md")).read()
    assert "| IR2ResNet20-paper | 32 | 87.2 %" in table
    assert os.path.getsize(os.path.join(out, "tradeoff.png")) > 1000


def test_ratios_are_to_the_bare_backbone_and_only_for_imagenet():
    def row(name, ms, flops, dataset="imagenet2012"):
        return {"model": name, "dataset": dataset, "latency_ms_1t": ms, "flops": flops}

    rows = [row(benchmark.BASELINE, 20.0, 100.0), row("IR2ResNet18-A", 23.0, 125.0), row("IR2ResNet20", 2.0, 1.0, "cifar10")]
    benchmark.add_ratios(rows, [1])
    assert rows[1]["latency_ratio_1t"] == pytest.approx(1.15) and rows[1]["flops_ratio"] == pytest.approx(1.25)
    assert rows[0]["latency_ratio_1t"] == 1.0 and "latency_ratio_1t" not in rows[2]


def test_unknown_rows_are_refused(capsys):
    assert main(["benchmark", "--models", "ResNet50"]) == 2
    assert "Unknown benchmark rows ['ResNet50']; choose from" in capsys.readouterr().err
