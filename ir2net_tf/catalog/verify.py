"""``python -m zoo verify``: every model and head, checked end to end at the
size its users run it.

One row per (model, head, input size): build → one training step (IR²'s,
or the plain step of an IR-Net model) → LCE export → op census (every binary
convolution an ``LceBconv2d``, or the model's documented reason,
``ModelSpec.deploy_note``) → Keras/LCE parity on random inputs, with random
weights and batch-norm statistics, judged as ``python -m export`` judges it
(the median input's difference against the outputs' spread; top-1 agreement
reported), with one addition for random-weight networks (``judge_parity``:
rounding flips) → optionally instructions
per inference under valgrind (with the ratio to the larq-zoo original of the
same network) → save as ``.keras``, load back, outputs equal.

Rows are kept in a JSON file written after each row (atomically), so a
stopped sweep resumes where it stopped; the markdown table beside it is what
docs/verification.md holds.
"""

import fnmatch
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from ir2net_tf._util.files import atomic_write
from ir2net_tf.flag_domains import argparse_type, at_least

ORIGINAL = "original"  # the head label of a larq-zoo network without IR² (recovery=False)
PARITY_SAMPLES = 64  # what `python -m export` checks a random-weights model on
WEIGHTS_SEED = 0  # each row's random weights (verify_row)


# ---------------------------------------------------------------- the rows


def head_label(variant) -> str:
    return "–" if variant is None else str(variant)


def row_head(spec, variant, recovery: bool) -> str:
    """A row's head: ``ORIGINAL`` for a larq-zoo network without its recovery head, else the variant."""
    return ORIGINAL if not recovery and spec.has_recovery else head_label(variant)


def plan() -> List[Tuple[str, Optional[str], bool]]:
    """(model, variant, recovery) of every model and head: each registered
    variant, plus, for a network with a published original (larq-zoo), that
    original without the recovery head."""
    from ir2net_tf import zoo

    out = []
    for spec in zoo.MODELS.values():
        if spec.baseline is not None:
            out.append((spec.name, ORIGINAL, False))
        out += [(spec.name, variant, spec.has_recovery) for variant in spec.variants]
    return out


def usual_size(spec) -> int:
    """The size users run the model at: its default (224 ImageNet, 32 CIFAR)."""
    return spec.input_size


def smallest_size(spec) -> int:
    """The smallest input the model builds at (8 px at least)."""
    return max(8, spec.min_size or spec.stride)


def size_for(spec, image_size) -> int:
    """``--image_size``: a number, "smallest" or None (the usual size). A
    number the model cannot take becomes the nearest size it can (the row
    says which)."""
    if image_size is None:
        return usual_size(spec)
    if image_size == "smallest":
        return smallest_size(spec)
    size = max(int(image_size), smallest_size(spec))
    return -(-size // spec.stride) * spec.stride


def family(spec) -> tuple:
    """Models that share a method, a source of binary convolutions and a
    dataset: ours (IR², IR-Net) on ImageNet and CIFAR, and larq-zoo's."""
    return spec.method, spec.pretrained, spec.dataset


def cost(spec) -> float:
    """FLOPs of the model's default head at its smallest size (from the
    catalog's table, scaled from the default size)."""
    from ir2net_tf.catalog import table

    row = next(r for r in table.stored_rows() if r["model"] == spec.name and r["variant"] == spec.default_variant)
    return row["flops"] * (smallest_size(spec) / spec.input_size) ** 2


def representatives() -> List[str]:
    """One model per family: the cheapest at its smallest size (``cost``)."""
    from ir2net_tf import zoo

    chosen: Dict[tuple, object] = {}
    for spec in zoo.MODELS.values():
        best = chosen.get(family(spec))
        if best is None or cost(spec) < cost(best):
            chosen[family(spec)] = spec
    return [spec.name for spec in chosen.values()]


def row_key(model: str, head: str, size: int) -> str:
    return f"{model}|{head}|{size}"


def matches(patterns: Optional[List[str]], model: str, head: str) -> bool:
    """``--models``: shell patterns on the model's name or on ``NAME:HEAD``."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(model, p) or fnmatch.fnmatchcase(f"{model}:{head}", p) for p in patterns)


# ---------------------------------------------------------------- one row


def _timed(row: dict, step: str, function):
    start = time.perf_counter()
    try:
        return function()
    finally:
        row["seconds"][step] = round(time.perf_counter() - start, 1)


def training_step(model, spec) -> dict:
    """One step of the trainer users train with: IR² (restriction at its
    default λ) for IR² models and larq-zoo originals, the plain step for the
    IR-Net models (they have no information restriction)."""
    import numpy as np
    import tensorflow as tf

    from ir2net_tf.nn.restriction import DEFAULT_LAMBDA
    from ir2net_tf.training.trainer import IR2Trainer

    lam = 0.0 if spec.method == "irnet" else DEFAULT_LAMBDA
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, *shape)).astype(np.float32))
    y = tf.constant(rng.integers(0, model.output_shape[-1], 2))
    trainer = IR2Trainer(model, restriction_lambda=lam)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.01))
    logs = trainer.train_step((x, y))
    loss = float(logs["loss"])
    return {"step": "IR²" if lam else "plain", "loss": loss, "step_ok": bool(np.isfinite(loss))}


def save_and_reload(model) -> dict:
    """Saves ``model`` as ``.keras``, loads it back with no custom objects
    (as the README promises) and compares the outputs."""
    import numpy as np
    import tensorflow as tf

    from ir2net_tf.export.parity import random_inputs
    from ir2net_tf.nn.layers import without_clip_advice

    x = random_inputs(tuple(model.input_shape[1:]), 2, seed=1)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.keras")
        model.save(path)
        with without_clip_advice():  # the advice, once per binary layer, is noise here (nn/layers.py)
            loaded = tf.keras.models.load_model(path)
    before, after = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    # Random weights after one step can overflow to NaN at tiny sizes; the
    # reload is judged on whether it gives the same numbers, NaN included.
    difference = np.abs(before - after)
    return {"reload_equal": bool(np.array_equal(before, after, equal_nan=True)),
            "reload_max_diff": float(np.nanmax(difference)) if np.isfinite(difference).any() else 0.0,
            "outputs_finite": bool(np.isfinite(before).all())}


def judge_parity(figures: dict, hazards: List[str]) -> Tuple[Optional[str], Optional[str]]:
    """(failure or None, note or None) of the parity ``figures`` of a
    random-weights model, as ``python -m export`` judges them: the median
    input within ``MAX_RELATIVE_DIFFERENCE`` of Keras (against the spread),
    or rounding flips (``parity.rounding_flips``) where no layer has LCE's
    zero-padding fault, which a failure names."""
    from ir2net_tf.export.parity import difference_failure, rounding_flips

    why = difference_failure("random", figures)
    if why is None:
        return None, None
    if hazards:
        return (f"parity: {why} — LCE computes zero-padded binary convolutions wrongly on maps smaller than the "
                f"kernel ({len(hazards)} such: {hazards[0]}, …); run it at a larger size"), None
    note = rounding_flips(figures)
    return (None, note) if note else (f"parity: {why}", None)


def _rejudged(row: dict) -> dict:
    """``row`` judged by today's ``judge_parity`` from its stored figures
    (rows written before the figures it needs were recorded keep their verdict)."""
    figures = row.get("agreement")
    if not figures or "relative_median_diff" not in figures:
        return row
    others = [f for f in row["failures"] if not f.startswith(("agreement:", "parity:"))]
    failure, note = judge_parity(figures, row.get("hazards") or [])
    if (failure or note) and "hazards" not in row:
        return row  # judged before the hazards were always recorded: run it again (--redo)
    failures = others + ([failure] if failure else [])
    return dict(row, failures=failures, parity_note=note, ok=not failures)


def random_model(model_name: str, **kwargs):
    """``zoo.build(model_name, **kwargs)`` with its weights drawn from ``WEIGHTS_SEED``."""
    import tensorflow as tf

    from ir2net_tf import zoo

    tf.keras.utils.set_random_seed(WEIGHTS_SEED)  # Python's, NumPy's and TensorFlow's
    return zoo.build(model_name, **kwargs)


def verify_row(model_name: str, variant, recovery: bool, size: int, *, instructions: bool = False,
               samples: int = PARITY_SAMPLES) -> dict:
    """Runs every check on one model and head; a failing step is recorded in
    ``failures`` (with its exception) and the later steps that need it are
    skipped. The random weights are drawn with seed ``WEIGHTS_SEED``, so a
    row run again (here or on another machine, same TensorFlow) checks the
    same model: which random models meet rounding flips depends on the draw."""
    import tensorflow as tf

    from ir2net_tf import zoo
    from ir2net_tf.export.census import check_census, keras_conv_counts, op_census
    from ir2net_tf.export.convert import convert, randomize_batch_norm, zero_padding_hazards
    from ir2net_tf.export.parity import parity, random_inputs

    spec = zoo.get_spec(model_name)
    head = row_head(spec, variant, recovery)
    row = {"model": model_name, "head": head, "size": size, "seconds": {}, "failures": []}
    started = time.perf_counter()
    kwargs = {"input_shape": (size, size, 3), "classifier_activation": None}
    if spec.has_recovery:
        kwargs.update(recovery=recovery, variant=None if not recovery else variant)
    try:
        model = _timed(row, "build", lambda: random_model(model_name, **kwargs))
        row.update(_timed(row, "step", lambda: training_step(model, spec)))
        if not row["step_ok"]:
            row["failures"].append(f"training step: loss {row['loss']}")
        randomize_batch_norm(model)  # as the export of a random-weights model
        flatbuffer = _timed(row, "export", lambda: convert(model))
        row["tflite_bytes"] = len(flatbuffer)
        census = check_census(op_census(flatbuffer), keras_conv_counts(model))
        row["census"] = {k: census[k] for k in ("lce_bconv2d", "binary_convs_keras", "float_conv_ops",
                                                "float_convs_keras", "ok", "problems")}
        row["census"]["ops"] = census["ops"]
        row["deploy_note"] = spec.deploy_note
        row["failures"] += [f"census: {p}" for p in census["problems"]]
        figures = _timed(row, "agreement", lambda: parity(
            model, flatbuffer, random_inputs(tuple(model.input_shape[1:]), samples)))
        row["agreement"] = figures
        row["hazards"] = zero_padding_hazards(model)
        failure, row["parity_note"] = judge_parity(figures, row["hazards"])
        if failure:
            row["failures"].append(failure)
        if instructions:
            from ir2net_tf.catalog import instructions as counting

            row["instructions"] = _timed(row, "instructions",
                                         lambda: counting.per_inference_or_none(flatbuffer))
        row.update(_timed(row, "reload", lambda: save_and_reload(model)))
        if not row["reload_equal"]:
            row["failures"].append(f"reload: outputs differ by up to {row['reload_max_diff']:.3g}")
    except Exception as error:  # a sweep records the failure and goes on
        row["failures"].append(f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}")
    finally:
        tf.keras.backend.clear_session()
    row["seconds"]["total"] = round(time.perf_counter() - started, 1)
    row["ok"] = not row["failures"]
    return row


# ---------------------------------------------------------------- the sweep


def isolated_row(model_name: str, variant, recovery: bool, size: int, **options) -> dict:
    """``verify_row`` in a fresh process (``isolated.call``), whose memory
    goes back when the row ends: in one process the sweep at 224 grew to
    20 GB by its 94th row and the system killed it. A row whose process dies
    (out of memory, a crash in the converter) is recorded as a failure
    saying so, and the sweep goes on."""
    from ir2net_tf.catalog import isolated

    started = time.perf_counter()
    try:
        return isolated.call(verify_row, model_name, variant, recovery, size, **options)
    except isolated.ProcessDied:
        from ir2net_tf import zoo

        head = row_head(zoo.get_spec(model_name), variant, recovery)
        return {"model": model_name, "head": head, "size": size, "ok": False,
                "seconds": {"total": round(time.perf_counter() - started, 1)},
                "failures": ["the row's process died (out of memory, or a crash in TensorFlow or the converter); "
                             "run this row alone (--models NAME:HEAD --redo) to see its error"]}


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}"


def load_state(path: str) -> dict:
    if not os.path.exists(path):
        return {"rows": {}}
    try:
        with open(path, encoding="utf-8") as file:
            state = json.load(file)
        state["rows"]  # noqa: B018  (the file is ours)
        return state
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a verification state file ({error}); pass another --output, "
                         "or move it away to start over.") from None


def add_ratios(rows: List[dict]) -> None:
    """Instructions over the larq-zoo original of the same network and size."""
    originals = {(r["model"], r["size"]): r.get("instructions") for r in rows if r["head"] == ORIGINAL}
    for row in rows:
        base = originals.get((row["model"], row["size"]))
        if row.get("instructions") and base:
            row["instruction_ratio"] = row["instructions"] / base


def _agreement_cell(row) -> str:
    figures = row.get("agreement")
    if not figures:
        return "–"
    text = f"{100 * figures['top1_agreement']:.0f} %"
    if "relative_median_diff" in figures:
        text += (f"; {round(figures['close_fraction'] * figures['samples'])}/{figures['samples']} equal, "
                 f"median difference {figures['relative_median_diff']:.2g}")
    return text


def _census_cell(row) -> str:
    census = row.get("census")
    if not census:
        return "–"
    text = f"{census['lce_bconv2d']}/{census['binary_convs_keras']} bconv, {census['float_conv_ops']} float conv"
    if not census["ok"]:
        return "FAIL: " + text
    return text + (" (not fully binary: see note)" if row.get("deploy_note") else "")


def _short(failure: str, row: dict) -> str:
    """A failure as the table says it: LCE's known zero-padding fault in a few words."""
    if failure.startswith(("agreement:", "parity:")) and row.get("hazards"):
        figures = row["agreement"]
        return (f"agreement {100 * figures['top1_agreement']:.0f} %: LCE's zero-padding fault "
                f"({len(row['hazards'])} binary conv(s) on maps smaller than the kernel at this size; "
                "exact at a larger input or with pad_values=1)")
    return failure


def markdown(state: dict) -> str:
    rows = sorted((_rejudged(r) for r in state["rows"].values()), key=lambda r: (r["order"], r["size"]))
    add_ratios(rows)
    sizes = {}
    for r in rows:
        sizes[r["size"]] = sizes.get(r["size"], 0) + 1
    at = ", ".join(f"{n} at {size}×{size}" for size, n in sorted(sizes.items()))
    failed = sum(not r["ok"] for r in rows)
    lines = [
        f"Run {state.get('date', '?')} on {state.get('machine', '?')} by `python -m zoo verify`: "
        f"{len(rows)} rows ({at}), {failed} with failures, "
        f"{sum(r['seconds'].get('total', 0) for r in rows) / 60:.0f} min of row time.",
        "",
        "| model | head | size | step (loss) | census: LceBconv2d / binary convs | parity (random weights): top-1 "
        "agreement; inputs equal to rounding, median difference / spread "
        "| instructions (ratio to original) | .keras reload | s | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        step = f"{r['step']} ({r['loss']:.2f})" if "loss" in r else "–"
        counted = "–"
        if r.get("instructions"):
            counted = f"{r['instructions'] / 1e6:,.0f} M"
            if r.get("instruction_ratio"):
                counted += f" ({r['instruction_ratio']:.3f})"
        reload = "–" if "reload_equal" not in r else ("equal" if r["reload_equal"] else "DIFFER")
        result = "ok" if r["ok"] else "FAIL: " + "; ".join(_short(f, r) for f in r["failures"])
        if r["ok"] and r.get("parity_note"):
            result += f" ({r['parity_note']})"
        lines.append(f"| {r['model']} | {r['head']} | {r['size']} | {step} | {_census_cell(r)} | "
                     f"{_agreement_cell(r)} | {counted} | {reload} | {r['seconds'].get('total', '–')} | "
                     f"{result.replace('|', '/')} |")
    return "\n".join(lines)


def run(args) -> int:
    from ir2net_tf import zoo

    patterns = [p for value in args.models or [] for p in value.split(",") if p]
    todo = [(m, v, rec) for m, v, rec in plan()
            if matches(patterns, m, row_head(zoo.get_spec(m), v, rec))]
    if not todo:
        raise ValueError(f"--models {' '.join(args.models)} matches no model; choose among {sorted(zoo.MODELS)} "
                         "(shell patterns, e.g. 'IR2Quick*' or 'IR2QuickNet:B').")
    state_path, table_path = args.output + ".json", args.output + ".md"
    state = load_state(state_path)
    state.update(date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), machine=machine())
    order = {key: i for i, key in enumerate(plan())}
    started = time.perf_counter()
    for index, (model, variant, recovery) in enumerate(todo, 1):
        spec = zoo.get_spec(model)
        size = size_for(spec, args.image_size)
        head = row_head(spec, variant, recovery)
        key = row_key(model, head, size)
        prefix = f"[{index}/{len(todo)}] {model} {head} {size}px"
        if key in state["rows"] and not args.redo:
            print(f"{prefix}: done before ({'ok' if state['rows'][key]['ok'] else 'failed'}), kept", flush=True)
            continue
        row = isolated_row(model, variant, recovery, size, instructions=args.instructions, samples=args.samples)
        row["order"] = order[(model, variant, recovery)]
        state["rows"][key] = row
        atomic_write(state_path, (json.dumps(state, indent=1, ensure_ascii=False) + "\n").encode())
        outcome = "ok" if row["ok"] else "FAILED: " + "; ".join(row["failures"])
        print(f"{prefix}: {outcome} ({row['seconds']['total']:.0f} s; {time.perf_counter() - started:.0f} s "
              "elapsed)", flush=True)
    atomic_write(table_path, (markdown(state) + "\n").encode())
    failed = [r for r in map(_rejudged, state["rows"].values()) if not r["ok"]]
    print(f"Wrote {state_path} and {table_path}: {len(state['rows'])} rows, {len(failed)} with failures.")
    return 1 if failed and args.strict else 0


def image_size_type(value: str):
    if value == "smallest":
        return value
    return argparse_type(at_least(1))(value)


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", metavar="PATTERN",
                        help="shell patterns on model names or NAME:HEAD, e.g. 'IR2Quick*' IR2XNORNet:original "
                             "(default: every model and head)")
    parser.add_argument("--image_size", type=image_size_type,
                        help="input height and width for every model, or 'smallest' (each model's smallest); "
                             "default: the size its users run it at (224 ImageNet, 32 CIFAR)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per inference under valgrind (slow; where it is installed)")
    parser.add_argument("--samples", type=argparse_type(at_least(1)), default=PARITY_SAMPLES,
                        help=f"random inputs of the agreement check (default {PARITY_SAMPLES}, as the export)")
    parser.add_argument("--output", default="verification",
                        help="writes OUTPUT.json (the rows; a rerun resumes from it) and OUTPUT.md "
                             "(default: verification)")
    parser.add_argument("--redo", action="store_true", help="run the chosen rows again even where done")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row failed")
