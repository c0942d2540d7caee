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


def catalog_row(name: str, variant) -> dict:
    spec = zoo.get_spec(name)
    model = zoo.build(name, variant=variant)
    row = {"model": name, "variant": variant, "input": f"{spec.input_size}x{spec.input_size}"}
    row.update(complexity(model).as_dict())
    row["deployed_mb"] = row["deployed_bytes"] / 1e6
    known = spec.variants.get(variant)
    row["paper_top1"] = known.paper_top1 if known else None
    row["paper_top5"] = known.paper_top5 if known else None
    row["reported_by"] = known.source if known and known.paper_top1 is not None else None
    tf.keras.backend.clear_session()
    return row


def catalog_rows(progress: bool = True, models=None) -> list:
    """Rows of every model and variant, or of the ``models`` named."""
    for name in models or []:
        zoo.get_spec(name)  # a clear error for unknown names
    pairs = [(name, variant) for name, variant in zoo.model_variants() if not models or name in models]
    return [catalog_row(name, variant) for name, variant in tqdm(pairs, disable=not progress, desc="building models")]


def add_measured(rows, chosen, args, progress: bool = True) -> None:
    """Adds measured accuracy to the rows whose (model, variant) has weights in ``chosen``."""
    from ir2net_tf.catalog.measured import measure_accuracy

    known = set(zoo.model_variants())
    unknown = [f"{name}:{variant}" for name, variant in chosen if (name, variant) not in known]
    if unknown:
        raise ValueError(f"--weights for {', '.join(unknown)}: no such model and variant in the zoo.")
    for row in rows:
        key = (row["model"], row["variant"])
        if key in chosen:
            row.update(measure_accuracy(*key, chosen[key], dataset=args.dataset, data_dir=args.data_dir,
                                        image_size=args.image_size, padding=args.padding, progress=progress))


def _cell(key, value) -> str:
    if value is None:
        return "–"
    if key in ("bops", "flops"):
        return f"{value / 1e6:,.1f}M"
    if key == "deployed_mb":
        return f"{value:.2f}"
    if key.endswith(("top1", "top5")):  # the paper's and measured accuracies, in percent
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
