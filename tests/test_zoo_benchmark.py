"""python -m zoo benchmark: the real path on a small model, and the ratios."""

import json
import os

import pytest

from ir2net_tf.catalog import instructions
from ir2net_tf.catalog import benchmark
from ir2net_tf.catalog.cli import main


@pytest.mark.slow
def test_benchmark_writes_json_markdown_and_plot(tmp_path, capsys):
    out = str(tmp_path / "bench")
    cache = str(tmp_path / "missing" / "cache")  # created when missing
    args = ["benchmark", "--models", "IR2ResNet20-paper", "--train", "--runs", "2", "--rounds", "2", "--threads", "1",
            "--output_dir", out, "--cache_dir", cache]
    assert main(args) == 0
    counted = instructions.available()  # where valgrind is installed
    cached = ["IR2ResNet20-paper_32.tflite"] + (["IR2ResNet20-paper_32.instructions.json"] if counted else [])
    assert sorted(os.listdir(cache)) == sorted(cached)
    first = json.load(open(os.path.join(out, "results.json")))["rows"][0]["instructions"]
    assert main(args) == 0  # the second run reuses the flatbuffer and its count
    assert "reused" in capsys.readouterr().out
    rows = json.load(open(os.path.join(out, "results.json")))["rows"]
    assert [r["model"] for r in rows] == ["IR2ResNet20-paper"]
    row = rows[0]
    assert row["lce_bconv2d"] == 18 and row["tflite_bytes"] > 10_000
    assert row["latency_ms_1t"] > 0 and row["params"] == 272_458
    if counted:  # IR2ResNet20 at 32×32: 1.2 M FLOPs, a few million instructions
        assert row["instructions"] == first and 1e6 < row["instructions"] < 1e8
    else:
        assert row["instructions"] is None
    table = open(os.path.join(out, "results.md")).read()
    assert "| IR2ResNet20-paper | 32 | 87.2 %" in table
    assert ("x86 host proxy" in table) and ("M | – |" in table if counted else "MB | – | – |" in table)
    assert os.path.getsize(os.path.join(out, "tradeoff.png")) > 1000


def test_ratios_are_to_the_bare_backbone_and_only_for_imagenet():
    def row(name, ms, flops, dataset="imagenet2012"):
        return {"model": name, "dataset": dataset, "latency_ms_1t": ms, "flops": flops}

    rows = [row(benchmark.BASELINE, 20.0, 100.0), row("IR2ResNet18-A", 23.0, 125.0), row("IR2ResNet20", 2.0, 1.0, "cifar10")]
    for r, count in zip(rows, (400e6, 412e6, 3e6)):
        r["instructions"] = count
    rows.append({**row("no valgrind", 21.0, 110.0), "instructions": None})
    benchmark.add_ratios(rows, [1])
    assert rows[1]["latency_ratio_1t"] == pytest.approx(1.15) and rows[1]["flops_ratio"] == pytest.approx(1.25)
    assert rows[1]["instructions_ratio"] == pytest.approx(1.03)
    assert rows[0]["latency_ratio_1t"] == 1.0 and "latency_ratio_1t" not in rows[2]
    assert "instructions_ratio" not in rows[2] and "instructions_ratio" not in rows[3]


def test_unknown_rows_are_refused(capsys):
    assert main(["benchmark", "--models", "ResNet50"]) == 2
    assert "Unknown benchmark rows ['ResNet50']; choose from" in capsys.readouterr().err


def test_a_row_the_converter_crashes_on_is_listed_and_written(tmp_path, capsys, monkeypatch):
    """Conversions run in a fresh process (LCE 0.16 crashes with a segmentation
    fault on larq-zoo's DoReFaNet at 224): a crash there is a row not converted."""
    from ir2net_tf.catalog import isolated

    def crashed(function, name, size):
        raise isolated.ProcessDied(f"the process of {function.__name__}() died")

    monkeypatch.setattr(benchmark.isolated, "call", crashed)
    out = str(tmp_path / "bench")
    args = ["benchmark", "--models", "IR2ResNet20-A", "--train", "--no_instructions",
            "--runs", "1", "--rounds", "1", "--threads", "1", "--output_dir", out]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "not converted: LCE's converter crashed on IR2ResNet20-A at 32×32" in printed
    rows = json.load(open(os.path.join(out, "results.json")))["rows"]
    assert [r["model"] for r in rows] == ["IR2ResNet20-A"]
    assert all("tflite_bytes" not in r and "latency_ms_1t" not in r and r["params"] > 0 for r in rows)
    table = open(os.path.join(out, "results.md")).read()
    assert "| IR2ResNet20-A | 32 |" in table and "| – | – | – ms" not in table
    assert "Not converted: IR2ResNet20-A: LCE's converter crashed on IR2ResNet20-A at 32×32" in table
