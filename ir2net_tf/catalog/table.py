"""The rows of ``python -m zoo list``: every model and variant, measured by our
own complexity accounting, beside the paper's reported accuracy.

Building the 84 models to count them takes minutes and gigabytes, so the
rows live in ``catalog_table.json`` beside this module, generated from the
model descriptions (``ModelSpec``) and the built models by
``python -m zoo list --regenerate``. The list reads that file and imports no
TensorFlow. tests/test_zoo_cli.py checks the file against the specs (every
model and variant, every described fact) and against built models.
"""

import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from ir2net_tf._util.files import atomic_write

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog_table.json")
REGENERATE = "python -m zoo list --regenerate"

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
# What the measured counts are computed from: a change to one of these
# files or versions may change a row, so the table stores their fingerprint
# (``inputs_fingerprint``) and a test asks for a regeneration when it differs.
SOURCES = ("models", "nn", "zoo.py", os.path.join("catalog", "table.py"))
LIBRARIES = ("tensorflow", "tf-keras", "larq", "larq-zoo")
# Described facts: read from the spec, not measured on the built model.
SPEC_KEYS = ("model", "variant", "input", "paper_top1", "paper_top5", "reported_by", "deploy_note")


def described_row(spec, variant) -> dict:
    """The facts of a row that its ``ModelSpec`` states."""
    known = spec.variants.get(variant)
    return {
        "model": spec.name,
        "variant": variant,
        "input": f"{spec.input_size}x{spec.input_size}",
        "paper_top1": known.paper_top1 if known else None,
        "paper_top5": known.paper_top5 if known else None,
        "reported_by": known.source if known and known.paper_top1 is not None else None,
        "deploy_note": spec.deploy_note,
    }


def built_row(name: str, variant) -> dict:
    """A row measured on the model built at its default size (slow)."""
    import ir2net_tf  # noqa: F401  (Keras 2 before TensorFlow)
    import tensorflow as tf

    from ir2net_tf import zoo
    from ir2net_tf.nn.complexity import complexity

    spec = zoo.get_spec(name)
    model = zoo.build(name, variant=variant)
    row = described_row(spec, variant)
    row.update(complexity(model).as_dict())
    row["deployed_mb"] = row["deployed_bytes"] / 1e6
    del model
    tf.keras.backend.clear_session()
    return row


def built_rows(pairs: Sequence[Tuple[str, Optional[str]]], progress: bool = True) -> List[dict]:
    from tqdm import tqdm

    return [built_row(name, variant) for name, variant in tqdm(pairs, disable=not progress, desc="building models")]


def regenerate(path: str = TABLE_PATH, progress: bool = True) -> List[dict]:
    """Builds every model and variant and writes the table (atomically)."""
    from ir2net_tf import zoo

    rows = built_rows(zoo.model_variants(), progress=progress)
    atomic_write(path, table_bytes(rows))
    return rows


def inputs_fingerprint() -> str:
    """SHA-256 of the package's ``SOURCES`` (every ``.py`` file, by path and
    contents) and the ``LIBRARIES``' installed versions."""
    import hashlib
    from importlib import metadata

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = []
    for source in SOURCES:
        path = os.path.join(package, source)
        if os.path.isfile(path):
            files.append(path)
        for folder, _, names in os.walk(path):
            files.extend(os.path.join(folder, n) for n in names if n.endswith(".py"))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(os.path.relpath(path, package).replace(os.sep, "/").encode() + b"\0")
        with open(path, "rb") as file:
            digest.update(file.read() + b"\0")
    for library in LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}\0".encode())
    return digest.hexdigest()


def stored_fingerprint(path: str = TABLE_PATH) -> Optional[str]:
    """The ``inputs_fingerprint`` the table was generated with."""
    with open(path, encoding="utf-8") as file:
        return json.load(file).get("inputs")


def table_bytes(rows: List[dict]) -> bytes:
    document = {"generated_by": REGENERATE, "inputs": inputs_fingerprint(), "rows": rows}
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode()


def stored_rows(path: str = TABLE_PATH) -> List[dict]:
    """The generated table's rows."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)["rows"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"The catalog table {path} is missing or unreadable ({error}); "
                         f"regenerate it with `{REGENERATE}`.") from None


def catalog_rows(progress: bool = True, models=None) -> List[dict]:
    """Rows of every model and variant, or of the ``models`` named, from the
    generated table. Where the zoo is already imported (a program that added
    a variant to a spec, as ``ir2net_tf.models.spec`` shows), variants the
    table lacks are built and counted."""
    stored = stored_rows()
    by_key: Dict[Tuple[str, Optional[str]], dict] = {(r["model"], r["variant"]): r for r in stored}
    zoo = sys.modules.get("ir2net_tf.zoo")
    if zoo is not None:
        pairs = zoo.model_variants()
        for name in models or []:
            zoo.get_spec(name)  # a clear error for unknown names
        missing = [p for p in pairs if p not in by_key and (not models or p[0] in models)]
        by_key.update({(r["model"], r["variant"]): r for r in built_rows(missing, progress=progress)})
    else:
        pairs = list(by_key)
        names = list(dict.fromkeys(name for name, _ in pairs))
        for name in models or []:
            if name not in names:  # as ModelSpec's own error (get_spec)
                raise ValueError(f"Unknown model {name!r}; choose one of {sorted(names)}.")
    return [dict(by_key[p]) for p in pairs if not models or p[0] in models]


def deploy_notes(rows) -> List[str]:
    """One line per model whose export is not fully binary (``ModelSpec.deploy_note``)."""
    notes = dict.fromkeys((r["model"], r["deploy_note"]) for r in rows if r.get("deploy_note"))
    return [f"{name}: {note}" for name, note in notes]


def add_measured(rows, chosen, args, progress: bool = True) -> None:
    """Adds measured accuracy to the rows whose (model, variant) has weights in ``chosen``."""
    from ir2net_tf.catalog.measured import measure_accuracy

    known = {(r["model"], r["variant"]) for r in rows} if not chosen else _all_pairs()
    unknown = [f"{name}:{variant}" for name, variant in chosen if (name, variant) not in known]
    if unknown:
        raise ValueError(f"--weights for {', '.join(unknown)}: no such model and variant in the zoo.")
    for row in rows:
        key = (row["model"], row["variant"])
        if key in chosen:
            row.update(measure_accuracy(*key, chosen[key], dataset=args.dataset, data_dir=args.data_dir,
                                        image_size=args.image_size, padding=args.padding, progress=progress))


def _all_pairs():
    from ir2net_tf import zoo

    return set(zoo.model_variants())


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
