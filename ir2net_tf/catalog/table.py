"""The rows of ``python -m zoo list``: every model and variant, measured by our
own complexity accounting, beside the paper's reported accuracy."""

import ir2net_tf  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
from tqdm import tqdm

from ir2net_tf import zoo
from ir2net_tf.complexity import complexity

COLUMNS = (
    ("model", "model"),
    ("variant", "variant"),
    ("input", "input"),
    ("binary_params", "binary params"),
    ("fp_params", "FP params"),
    ("bops", "BOPs"),
    ("flops", "FLOPs"),
    ("deployed_mb", "size (MB)"),
    ("paper_top1", "top-1 (paper)"),
    ("paper_top5", "top-5 (paper)"),
    ("reported_by", "reported by"),
)


def model_variants():
    """(name, variant) for every zoo model and variant."""
    return [(info.name, variant) for info in zoo.MODELS.values() for variant in info.variants]


def catalog_row(name: str, variant) -> dict:
    info = zoo.get_model_info(name)
    model = info.builder(variant=variant)
    row = {"model": name, "variant": variant or "paper", "input": f"{info.input_size}x{info.input_size}"}
    row.update(complexity(model).as_dict())
    row["deployed_mb"] = row["deployed_bytes"] / 1e6
    top1, top5 = info.paper_accuracy.get(variant, (None, None))
    row["paper_top1"], row["paper_top5"] = top1, top5
    # IR-Net rows carry the accuracies IR-Net's own release reports.
    row["reported_by"] = None if top1 is None else ("IR-Net release" if name in zoo.IRNET_MODELS else "IR²Net paper")
    tf.keras.backend.clear_session()
    return row


def catalog_rows(progress: bool = True) -> list:
    pairs = model_variants()
    return [catalog_row(name, variant) for name, variant in tqdm(pairs, disable=not progress, desc="building models")]


def _cell(key, value) -> str:
    if value is None:
        return "–"
    if key in ("bops", "flops"):
        return f"{value / 1e6:,.1f}M"
    if key == "deployed_mb":
        return f"{value:.2f}"
    if key in ("paper_top1", "paper_top5"):
        return f"{value:.1f} %"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows, columns=COLUMNS) -> str:
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(key, row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)
