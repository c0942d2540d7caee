"""The export report: a JSON file beside the .tflite and a short summary."""

import json
from typing import Dict


def report_path(tflite_path: str) -> str:
    stem = tflite_path[: -len(".tflite")] if tflite_path.endswith(".tflite") else tflite_path
    return stem + ".json"


def to_json(report: Dict) -> bytes:
    return (json.dumps(report, indent=2, sort_keys=True) + "\n").encode()


def _parity_line(name: str, figures: Dict) -> str:
    if "dataset" in figures:
        name = f"{name} {figures['dataset']}"
    line = (
        f"  {name}: {figures['samples']} inputs, top-1 agreement {100 * figures['top1_agreement']:.1f} %, "
        f"max |diff| {figures['max_abs_diff']:.3g} (outputs up to {figures['max_abs_output']:.3g}), "
        f"{100 * figures['close_fraction']:.0f} % of inputs equal up to rounding"
    )
    if figures.get("relative_median_diff") is not None:
        line += (f"; |diff| {figures['relative_median_diff']:.2g} of the outputs' spread ({figures['output_spread']:.3g}) "
                 f"on the median input, {figures['relative_mean_diff']:.2g} on average")
    if figures.get("judged_agreement") is not None:
        line += (f"; {100 * figures['judged_agreement']:.1f} % on the {figures['judged']} that are not near-ties, "
                 f"{figures['near_ties']} near-tie(s) (top-1 margin ≤ {figures['near_tie_margin']:.3g}) not judged, "
                 f"{figures['near_tie_disagreements']} of them disagreeing")
    if figures.get("note"):
        line += f"; {figures['note']}"
    if "keras_accuracy" in figures:
        line += (f", top-1 accuracy Keras {100 * figures['keras_accuracy']:.2f} % / "
                 f".tflite {100 * figures['lce_accuracy']:.2f} %")
    return line


def summary(report: Dict) -> str:
    """A few lines a human reads after the export."""
    census = report["census"]
    lines = [
        report["model"]["name"]
        + (f" (variant {report['model']['variant']})" if report["model"].get("variant") is not None else "")
        + " -> "
        + (report["tflite"] or "nothing written (verification failed, below)"),
        f"  {report['size_bytes']:,} bytes, target {report['target']}, "
        f"input {report['input_type']} / output {report['output_type']}, converted in {report['convert_seconds']:.1f} s",
        f"  ops: {census['total_ops']} — "
        + ", ".join(f"{op} {n}" for op, n in census["ops"].items()),
        f"  LceBconv2d {census['lce_bconv2d']} for {census['binary_convs_keras']} binary convolutions; "
        f"float convolutions {census['float_conv_ops']} for {census['float_convs_keras']} in the Keras model; "
        + ", ".join(f"{op} {n}" for op, n in {**census["binarize_ops"], **census["int8_ops"]}.items()),
    ]
    if report.get("weights_note"):
        lines.insert(1, f"  weights: {report['weights_note']}")
    lines += [f"  census problem: {p}" for p in census["problems"]]
    lines += [f"  census note: {n}" for n in census.get("notes", [])]
    for name, figures in report.get("parity", {}).items():
        lines.append(_parity_line(name, figures))
    if "evaluation" in report:
        from ir2net_tf.export.evaluation import summary as evaluation_summary

        lines.append("  evaluation on " + evaluation_summary(report["evaluation"]))
    for row in report.get("latency", []):
        lines.append(
            f"  host latency ({row['kernel']}, {row['threads']} thread{'s' * (row['threads'] > 1)}): "
            f"median {row['median_ms']:.2f} ms over {row['runs']} runs"
        )
    lines.append("  OK" if report["ok"] else f"  FAILED: {report['failure']}")
    return "\n".join(lines)
