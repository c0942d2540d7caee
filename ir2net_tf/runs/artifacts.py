"""The model directory's file names and formats, every file written
atomically (``ir2net_tf._util.files``) so that a run killed at any moment leaves
every file whole."""

import csv
import io
import json
import os

from ir2net_tf._util.files import atomic_write, save_weights  # noqa: F401  (save_weights: part of this module's API)

CONFIG = "config.json"
METRICS = "metrics.csv"
CURVES = "curves.png"
BEST_WEIGHTS = "best.weights.h5"
FINAL_WEIGHTS = "final.weights.h5"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
TFLITE = "model.tflite"  # what `python -m export --model-dir` writes (and model.json beside it)
METRIC_COLUMNS = (
    "stage", "epoch", "loss", "accuracy", "top5", "kept", "val_loss", "val_accuracy", "val_top5",
    "learning_rate", "seconds",
)
# A row's numbers (all but stage and epoch), as the checkpoint keeps the last
# finished epoch's (runs/callbacks.py RunState.publish).
ROW_VALUES = METRIC_COLUMNS[2:]


def stage_weights(stage: str, kind: str) -> str:
    """``stage1_final.weights.h5`` and the like: each stage's own weights."""
    return f"stage{stage}_{kind}.weights.h5"


def write_json(path: str, value) -> None:
    atomic_write(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def read_metrics(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_metric_row(path: str, row: dict) -> list:
    """Adds (or, when an interrupted epoch was redone, replaces) the row of
    (stage, epoch); returns all rows."""
    key = (str(row["stage"]), str(row["epoch"]))
    rows = [r for r in read_metrics(path) if (r["stage"], r["epoch"]) != key]
    rows.append({c: row.get(c, "") for c in METRIC_COLUMNS})
    rows.sort(key=lambda r: (r["stage"], int(r["epoch"])))
    out = io.StringIO()
    writer = csv.DictWriter(out, METRIC_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, out.getvalue().encode())
    return rows


def _floats(rows, key):
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def plot_curves(metrics_path: str, out_path: str) -> None:
    """Loss and accuracy per epoch (all stages in order) as a PNG."""
    from ir2net_tf._util import plotting

    rows = read_metrics(metrics_path)
    if not rows:
        return
    x = list(range(1, len(rows) + 1))
    fig = plotting.figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    # Markers: a one-epoch stage (every smoke test) is a single point, which
    # a bare line does not draw.
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        left.plot(x, _floats(rows, key), label=label, marker="o", markersize=4)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        right.plot(x, _floats(rows, key), label=label, marker="o", markersize=4)
    stages = [r["stage"] for r in rows]
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            for axis in (left, right):
                axis.axvline(i + 0.5, color="grey", linestyle=":")
    labels = [f"{r['stage']}.{r['epoch']}" if len(set(stages)) > 1 else r["epoch"] for r in rows]
    step = max(1, len(rows) // 12)  # at most ~12 tick labels
    for axis in (left, right):
        axis.set_xticks(x[::step], labels[::step])
        axis.set_xlim(0.5, len(rows) + 0.5)
    xlabel = "stage.epoch" if len(set(stages)) > 1 else "epoch"
    left.set(title="loss", xlabel=xlabel)
    right.set(title="top-1 accuracy", xlabel=xlabel, ylim=(0, 1))
    left.legend()
    right.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write(out_path, buffer.getvalue())
