"""``python -m zoo benchmark``: accuracy against cost for the IR² models and
the anchors, measured by our own code in one run.

For every variant of every zoo model (the list comes from ``zoo.MODELS``) and
the anchors: LCE conversion (time, ``.tflite`` size, LceBconv2d count), host
latency in LCE's interpreter (each kernel option at 1 and 2 threads, best of
``--rounds`` rounds; the table keeps the fastest kernel per thread count),
FLOPs from ``ir2net_tf.nn.complexity``, executed instructions per inference
(``ir2net_tf.catalog.instructions``, where valgrind is installed: the ratios that
repeat) and, for a chosen few, training-step throughput
(``ir2net_tf.catalog.throughput``). Writes ``results.json``, ``results.md`` and
``tradeoff.png``; ``--cache_dir`` keeps the flatbuffers and their counts.
Each conversion runs in a fresh process: a row LCE cannot convert (an error,
or a crash of the converter) is listed as not converted, and the others
are measured.
"""

import dataclasses
import fnmatch
import hashlib
import json
import os
import platform
import shlex
import time
from datetime import datetime, timezone
from typing import Callable, List, Optional, Tuple

import tensorflow as tf

from ir2net_tf import zoo
from ir2net_tf.catalog import instructions, isolated
from ir2net_tf.export.census import BCONV_OP, op_census
from ir2net_tf.export.convert import convert, convert_float, float_twin
from ir2net_tf.export.errors import DeployError
from ir2net_tf.export.latency import measure_latency
from ir2net_tf.catalog import measured
from ir2net_tf.nn.complexity import complexity
from ir2net_tf.export.evaluation import TFLITE_IDENTIFIER
from ir2net_tf._util.files import atomic_write, check_writable_dir, refuse_file
from ir2net_tf.flag_domains import argparse_type, at_least
from ir2net_tf import path_args
from ir2net_tf.models import larq_zoo_backbones

BASELINE = "Bi-Real backbone"


@dataclasses.dataclass
class Entry:
    name: str
    build: Callable[[int], tf.keras.Model]  # input size → model (logits where we choose)
    reported_top1: Optional[float] = None
    source: str = ""  # where the accuracy comes from
    float_model: bool = False  # converted with the standard TFLite converter
    ir2: bool = False  # trained with the IR² step
    dataset: str = "imagenet2012"
    size: Optional[int] = None  # fixed input size (CIFAR models)
    key: Optional[Tuple[str, str]] = None  # (zoo model, variant) of a zoo row, for --weights


def _zoo(name, **kwargs):
    return lambda size: zoo.build(name, input_shape=(size, size, 3), classifier_activation=None, **kwargs)


def _is_imagenet(spec) -> bool:
    return spec.dataset.startswith("imagenet")


def _larq_zoo(network):
    """Builds larq-zoo's own ``network`` (with its classifier) at a size."""
    import importlib

    build = getattr(importlib.import_module(f"larq_zoo.{network.module}"), network.name)
    return lambda size: build(input_shape=(size, size, 3), weights=None)


def entries() -> List[Entry]:
    """Every variant of every zoo model (from ``zoo.MODELS``), then the
    anchors: the bare backbone, larq-zoo's Bi-Real Net and QuickNet, a float
    ResNet-18 of the same topology, and IR2ResNet18-A with LCE one-padding."""

    result = []
    for spec in zoo.MODELS.values():
        for name, variant in spec.variants.items():
            result.append(Entry(
                spec.name if name is None else f"{spec.name}-{name}", _zoo(spec.name, variant=name),
                variant.paper_top1, f"{variant.source} (reported)" if variant.paper_top1 else "",
                ir2=spec.method == "ir2net", dataset=spec.dataset,
                size=None if _is_imagenet(spec) else spec.input_size, key=(spec.name, name),
            ))
    result += [
        Entry(BASELINE, _zoo("IR2ResNet18", recovery=False), source="(ours, no recovery head)"),
        # Each larq-zoo network as larq-zoo builds it (its own classifier): the
        # original its IR² variants (IR2<name>-A…D above) are compared with.
        *(Entry(f"larq-zoo {name}", _larq_zoo(spec.backbone.network), spec.baseline.paper_top1, "larq-zoo")
          for name, spec in larq_zoo_backbones.SPECS.items()),
        Entry("float ResNet-18", lambda s: float_twin(_zoo("IR2ResNet18", recovery=False)(s)),
              source="(same topology, float32)", float_model=True),
        Entry("IR2ResNet18-A pad 1", _zoo("IR2ResNet18", variant="A", pad_values=1.0),
              source="(LCE one-padding)", ir2=True),
    ]
    return result


def choose(patterns: Optional[List[str]]) -> List[Entry]:
    """The entries whose names match any of ``patterns`` (shell-style:
    ``IR2ResNet18-*``); all when none are given."""
    every = entries()
    if not patterns:
        return every
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(e.name, p) for e in every)]
    if unknown:
        raise ValueError(f"Unknown benchmark rows {unknown}; choose from {[e.name for e in every]}.")
    return [e for e in every if any(fnmatch.fnmatchcase(e.name, p) for p in patterns)]


# Training throughput compiles a training step per model (about a minute each
# on 2 cores), so by default only these are timed.
DEFAULT_TRAIN = ("IR2ResNet18-A", BASELINE, "larq-zoo BiRealNet")


def _cached(entry: Entry, cache_dir: Optional[str], size: int, suffix: str) -> Optional[str]:
    return os.path.join(cache_dir, f"{entry.name.replace(' ', '_')}_{size}{suffix}") if cache_dir else None


def converted(name: str, size: int) -> bytes:
    """The flatbuffer of entry ``name`` at ``size``, built afresh (random
    weights: what the benchmark measures does not depend on their values).
    Run in a fresh process (``isolated.call``), so that a converter crash
    ends only it: LCE 0.16 crashes (a segmentation fault) or fails on
    larq-zoo's DoReFaNet with its fully connected top at 224."""
    entry = next(e for e in entries() if e.name == name)
    model = entry.build(size)
    return convert_float(model) if entry.float_model else convert(model)


def _flatbuffer(entry: Entry, cache_dir: Optional[str], size: int) -> Tuple[bytes, Optional[float]]:
    """(flatbuffer, conversion seconds or None when reused from ``cache_dir``);
    a DeployError when LCE cannot convert the entry."""
    cached = _cached(entry, cache_dir, size, ".tflite")
    if cached and os.path.exists(cached):
        with open(cached, "rb") as f:
            flatbuffer = f.read()
        if flatbuffer[4:8] != TFLITE_IDENTIFIER:
            what = "empty" if not flatbuffer else "not a .tflite file"
            raise ValueError(f"The cached file {cached} (--cache_dir) is {what}; delete it to convert the model again.")
        return flatbuffer, None
    start = time.perf_counter()
    try:
        flatbuffer = isolated.call(converted, entry.name, size)
    except isolated.ProcessDied as error:
        raise DeployError(f"LCE's converter crashed on {entry.name} at {size}×{size}: {error}") from error
    seconds = time.perf_counter() - start
    if cached:
        atomic_write(cached, flatbuffer)
    return flatbuffer, seconds


def instruction_count(entry: Entry, flatbuffer: bytes, cache_dir: Optional[str], size: int) -> Optional[int]:
    """Executed instructions per inference (``ir2net_tf.catalog.instructions``), or
    None without valgrind or when counting fails (said on stdout). The count
    of the same flatbuffer does not change: ``cache_dir`` keeps it, keyed on
    the flatbuffer's digest and the interpreter options."""
    if not instructions.available():
        return None
    key = {"sha256": hashlib.sha256(flatbuffer).hexdigest(), "options": instructions.KERNEL_OPTIONS}
    cached = _cached(entry, cache_dir, size, ".instructions.json")
    if cached and os.path.exists(cached):
        with open(cached) as f:
            saved = json.load(f)
        if {k: saved.get(k) for k in key} == key:
            return saved["instructions"]
    try:
        count = instructions.per_inference_or_none(flatbuffer)
    except instructions.InstructionCountError as error:
        print(f"    instructions not counted: {error}", flush=True)
        return None
    if cached:
        atomic_write(cached, json.dumps({**key, "instructions": count}).encode())
    return count


def measure(entry: Entry, *, size: int, train: bool, train_batch: int, cache_dir: Optional[str],
            count: bool = True) -> Tuple[dict, Optional[bytes]]:
    """Everything but latency for one entry: (row, flatbuffer); a row LCE
    cannot convert has ``not_converted`` (why) and no flatbuffer."""
    from ir2net_tf.catalog.throughput import train_throughput

    input_size = entry.size or size
    model = entry.build(input_size)
    row = {"model": entry.name, "dataset": entry.dataset, "input": input_size,
           "reported_top1": entry.reported_top1, "source": entry.source}
    row.update(complexity(model).as_dict())
    try:
        flatbuffer, row["convert_seconds"] = _flatbuffer(entry, cache_dir, input_size)
    except DeployError as error:
        flatbuffer, row["not_converted"] = None, str(error)
    if flatbuffer is not None:
        row["tflite_bytes"] = len(flatbuffer)
        row["lce_bconv2d"] = op_census(flatbuffer).get(BCONV_OP, 0)
        row["instructions"] = instruction_count(entry, flatbuffer, cache_dir, input_size) if count else None
    if train:
        if entry.ir2:
            row["train_ir2_images_per_second"] = train_throughput(model, ir2=True, batch_size=train_batch)[
                "images_per_second"]
        row["train_plain_images_per_second"] = train_throughput(
            entry.build(input_size), ir2=False, batch_size=train_batch)["images_per_second"]
    tf.keras.backend.clear_session()
    return row, flatbuffer


def time_latency(rows: List[dict], flatbuffers: List[bytes], entries_: List[Entry], *, runs: int, threads,
                 rounds: int) -> None:
    """Host latency in rounds over all rows, keeping each setting's smallest
    median (and fastest run): load on a shared host that comes and goes then
    hits every model alike instead of one."""
    for round_ in range(1, rounds + 1):
        print(f"latency round {round_}/{rounds} …", flush=True)
        for row, flatbuffer, entry in zip(rows, flatbuffers, entries_):
            if flatbuffer is None:  # not converted
                continue
            kernels = ("default",) if entry.float_model else ("default", "indirect_bgemm")
            latency = measure_latency(flatbuffer, kernels=kernels, threads=threads, runs=runs)
            if "latency" not in row:
                row["latency"] = latency
                continue
            for kept, new in zip(row["latency"], latency):
                kept["median_ms"] = min(kept["median_ms"], new["median_ms"])
                kept["min_ms"] = min(kept["min_ms"], new["min_ms"])
    for row in rows:
        for t in threads:
            if "latency" in row:
                row[f"latency_ms_{t}t"] = min(r["median_ms"] for r in row["latency"] if r["threads"] == t)


def add_ratios(rows: List[dict], threads) -> None:
    base = next((r for r in rows if r["model"] == BASELINE), None)
    if base is None:
        return
    for row in rows:
        if row["dataset"] != base["dataset"]:
            continue
        for t in threads:
            if f"latency_ms_{t}t" in row and f"latency_ms_{t}t" in base:
                row[f"latency_ratio_{t}t"] = row[f"latency_ms_{t}t"] / base[f"latency_ms_{t}t"]
        row["flops_ratio"] = row["flops"] / base["flops"]
        if row.get("instructions") and base.get("instructions"):
            row["instructions_ratio"] = row["instructions"] / base["instructions"]


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)


def _millions(value):
    return None if value is None else value / 1e6


def _ms(value):
    return "–" if value is None else f"{value:.1f} ms"


def markdown(rows: List[dict], threads, header: str) -> str:
    t1, t2 = threads[0], threads[-1]
    lines = [
        header,
        "",
        f"| model | input | top-1 (reported) | FLOPs | × FLOPs | .tflite | instructions | × instructions "
        f"| latency {t1}t | latency {t2}t | × latency {t1}t | × latency {t2}t | train img/s (IR² / plain) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        top1 = f"{r['reported_top1']:.1f} % {r['source']}" if r["reported_top1"] else r["source"]
        if r.get("measured_top1") is not None:
            top1 += f"; measured {r['measured_top1']:.1f} % (.tflite) / {r['measured_keras_top1']:.1f} % (Keras)"
        train = " / ".join(
            _fmt(r.get(k), ".1f") for k in ("train_ir2_images_per_second", "train_plain_images_per_second")
        ) if ("train_plain_images_per_second" in r) else "–"
        lines.append(
            f"| {r['model']} | {r['input']} | {top1} | {r['flops'] / 1e6:,.1f}M | {_fmt(r.get('flops_ratio'), '.3f')} "
            f"| {_fmt(_millions(r.get('tflite_bytes')), '.2f')}{' MB' if 'tflite_bytes' in r else ''} "
            f"| {_fmt(_millions(r.get('instructions')), ',.1f')}"
            f"{'M' if r.get('instructions') else ''} | {_fmt(r.get('instructions_ratio'), '.3f')} "
            f"| {_ms(r.get(f'latency_ms_{t1}t'))} | {_ms(r.get(f'latency_ms_{t2}t'))} "
            f"| {_fmt(r.get(f'latency_ratio_{t1}t'), '.3f')} | {_fmt(r.get(f'latency_ratio_{t2}t'), '.3f')} | {train} |"
        )
    lines += [
        "",
        f"× columns: ratio to the {BASELINE} (IR2ResNet18 without recovery head; ImageNet models only). "
        "Instructions: x86 instructions executed per inference in LCE's interpreter on this host (1 thread, "
        "indirect BGEMM kernel), counted with valgrind (cachegrind, runs of 1 and 3 inferences, the difference "
        "halved): an x86 host proxy for relative cost that repeats to about 0.05 %, not ARM time; "
        "\"–\" where valgrind is not installed. "
        "Latency: median of LCE's Python interpreter on this host, fastest kernel option per thread count; "
        "it moves by 5–15 % between runs on a shared machine, so rank by the instruction ratio. "
        "Accuracies are reported by their sources, not measured here." + measured.note(rows),
    ]
    lines += [f"\nNot converted: {r['model']}: {r['not_converted']}" for r in rows if "not_converted" in r]
    return "\n".join(lines)


def plot(rows: List[dict], path: str, threads) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r["reported_top1"] and r["dataset"] == "imagenet2012" and "not_converted" not in r]
    panels = [(f"latency_ms_{threads[0]}t", f"host latency, {threads[0]} thread (ms)", 1),
              ("flops", "FLOPs (BOPs/64 + FP MACs, millions)", 1e6)]
    if points and all(r.get("instructions") for r in points):
        panels.insert(0, ("instructions", "x86 instructions per inference (millions, valgrind)", 1e6))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5))
    for ax, (key, label, unit) in zip(axes, panels):
        for r in points:
            x = r[key] / unit
            ax.scatter(x, r["reported_top1"], s=40)
            ax.annotate(r["model"], (x, r["reported_top1"]), textcoords="offset points", xytext=(5, 3), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("ImageNet top-1 (%), as reported")
        ax.grid(alpha=0.3)
    figure.suptitle("IR²Net trade-off (accuracy reported by the paper / larq-zoo; cost measured here)")
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write(path, buffer.getvalue())


def add_arguments(parser) -> None:
    parser.add_argument("--size", type=argparse_type(at_least(1)), default=224,
                        help="input size of the ImageNet models (224)")
    parser.add_argument("--runs", type=argparse_type(at_least(1)), default=10,
                        help="timed inferences per kernel and thread count")
    parser.add_argument("--rounds", type=argparse_type(at_least(1)), default=2,
                        help="timing rounds over all rows; each setting keeps its best median (2)")
    parser.add_argument("--threads", type=argparse_type(at_least(1)), nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+",
                        help="only these rows (names as in the table; shell patterns such as 'IR2ResNet18-*')")
    parser.add_argument("--train", nargs="*", default=list(DEFAULT_TRAIN),
                        help=f"rows whose training throughput is measured (default: {', '.join(DEFAULT_TRAIN)}; "
                             "'all', or nothing to skip)")
    parser.add_argument("--train_batch", type=argparse_type(at_least(1)), default=8)
    parser.add_argument("--cache_dir",
                        type=path_args.argparse_type(path_args.PathArg(path_args.DIR, must_exist=False)),
                        help="keep the .tflite files here and reuse them on the next run "
                                            "(created if missing)")
    parser.add_argument("--output_dir", default="benchmark",
                        type=path_args.argparse_type(path_args.PathArg(path_args.DIR, must_exist=False)), help="where results.json/.md and tradeoff.png go")
    parser.add_argument("--no_instructions", action="store_true",
                        help="skip the valgrind instruction count (about a minute per row where valgrind is installed)")
    measured.add_arguments(parser)


def run(args) -> int:
    chosen = choose(args.models)
    folders = [(option, folder) for option, folder in (("--output_dir", args.output_dir),
                                                        ("--cache_dir", args.cache_dir)) if folder]
    for option, folder in folders:  # all refused before any is created
        refuse_file(folder, option)
    for option, folder in folders:
        check_writable_dir(folder, option=option)
    train = {e.name for e in chosen} if args.train == ["all"] else set(args.train)
    weights = measured.parse_weights(args.weights, args.dataset)
    rows_with_weights = {e.key for e in chosen if e.key}
    unmatched = [f"{name}:{variant}" for name, variant in weights if (name, variant) not in rows_with_weights]
    if unmatched:
        raise ValueError(f"--weights for {', '.join(unmatched)}: no such zoo row in this benchmark.")
    rows, flatbuffers = [], []
    started = time.perf_counter()
    for index, entry in enumerate(chosen, start=1):
        print(f"[{index}/{len(chosen)}] {entry.name}: converting"
              + (", training" if entry.name in train else "") + " …", flush=True)
        row, flatbuffer = measure(entry, size=args.size, train=entry.name in train, train_batch=args.train_batch,
                                  cache_dir=args.cache_dir, count=not args.no_instructions)
        if entry.key in weights:
            row.update(measured.measure_accuracy(*entry.key, weights[entry.key], dataset=args.dataset,
                                                 data_dir=args.data_dir, image_size=args.image_size,
                                                 padding=args.padding))
        rows.append(row)
        flatbuffers.append(flatbuffer)
        if flatbuffer is None:
            print(f"    not converted: {row['not_converted']}", flush=True)
            continue
        how = "reused" if row["convert_seconds"] is None else f"converted in {row['convert_seconds']:.1f} s"
        counted = f", {row['instructions'] / 1e6:,.1f} M instructions" if row["instructions"] else ""
        print(f"    {row['tflite_bytes']:,} bytes, {row['lce_bconv2d']} LceBconv2d, {how}{counted}", flush=True)
    time_latency(rows, flatbuffers, chosen, runs=args.runs, threads=args.threads, rounds=args.rounds)
    add_ratios(rows, args.threads)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}"
    command = "python -m zoo benchmark" + (" --models " + " ".join(shlex.quote(m) for m in args.models)
                                           if args.models else "")
    header = f"Measured {when} on {machine} by `{command}` ({time.perf_counter() - started:.0f} s)."
    table = markdown(rows, args.threads, header)
    atomic_write(os.path.join(args.output_dir, "results.json"),
                 json.dumps({"date": when, "machine": machine, "rows": rows}, indent=2).encode())
    atomic_write(os.path.join(args.output_dir, "results.md"), (table + "\n").encode())
    plot(rows, os.path.join(args.output_dir, "tradeoff.png"), args.threads)
    print()
    print(table)
    print(f"\nWrote {args.output_dir}/results.json, results.md and tradeoff.png")
    return 0
