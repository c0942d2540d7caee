"""``python -m zoo benchmark``: accuracy against cost for the IR² models and
the anchors, measured by our own code in one run.

For every model: LCE conversion (time, ``.tflite`` size, LceBconv2d count),
host latency in LCE's interpreter (each kernel option at 1 and 2 threads; the
table keeps the fastest kernel per thread count), FLOPs from
``ir2net_tf.complexity`` and, for a chosen few, training-step throughput.
Writes ``results.json``, ``results.md`` and ``tradeoff.png``.
"""

import dataclasses
import json
import os
import platform
import time
from datetime import datetime, timezone
from typing import Callable, List, Optional

import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf.complexity import complexity
from ir2net_tf.files import atomic_write

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


def _zoo(name, **kwargs):
    return lambda size: zoo.build(name, input_shape=(size, size, 3), classifier_activation=None, **kwargs)


def entries() -> List[Entry]:
    import larq_zoo

    info = zoo.get_model_info("IR2ResNet18")
    result = [
        Entry(f"IR2ResNet18-{v}", _zoo("IR2ResNet18", variant=v), info.paper_accuracy[v][0], "IR²Net paper", ir2=True)
        for v in "ABCD"
    ]
    result += [
        Entry(BASELINE, _zoo("IR2ResNet18", recovery=False), source="(ours, no recovery head)"),
        Entry("larq-zoo BiRealNet", lambda s: larq_zoo.literature.BiRealNet(input_shape=(s, s, 3), weights=None),
              57.47, "larq-zoo"),
        Entry("larq-zoo QuickNet", lambda s: larq_zoo.sota.QuickNet(input_shape=(s, s, 3), weights=None),
              63.3, "larq-zoo"),
        Entry("float ResNet-18", lambda s: deploy.float_twin(_zoo("IR2ResNet18", recovery=False)(s)),
              source="(same topology, float32)", float_model=True),
        Entry("IR2ResNet34-A", _zoo("IR2ResNet34", variant="A"), ir2=True),
    ]
    for name in ("IR2ResNet20", "IR2ResNet18CIFAR", "IR2VGGSmall"):
        cifar = zoo.get_model_info(name)
        result.append(Entry(name, _zoo(name), cifar.paper_accuracy[None][0], "IR²Net paper (CIFAR-10)",
                            ir2=True, dataset="cifar10", size=32))
    for name in zoo.IRNET_MODELS:  # IR-Net: accuracies its own release reports
        irnet = zoo.get_model_info(name)
        cifar = irnet.dataset == "cifar10"
        result.append(Entry(name, _zoo(name), irnet.paper_accuracy[None][0], "IR-Net release (reported)",
                            dataset=irnet.dataset, size=32 if cifar else None))
    return result


# Training throughput compiles a training step per model (about a minute each
# on 2 cores), so by default only these are timed.
DEFAULT_TRAIN = ("IR2ResNet18-A", BASELINE, "larq-zoo BiRealNet")


def measure(entry: Entry, *, size: int, runs: int, threads, train: bool, train_batch: int) -> dict:
    from ir2net_tf.throughput import train_throughput

    input_size = entry.size or size
    model = entry.build(input_size)
    row = {"model": entry.name, "dataset": entry.dataset, "input": input_size,
           "reported_top1": entry.reported_top1, "source": entry.source}
    row.update(complexity(model).as_dict())
    start = time.perf_counter()
    flatbuffer = deploy.convert_float(model) if entry.float_model else deploy.convert(model)
    row["convert_seconds"] = time.perf_counter() - start
    row["tflite_bytes"] = len(flatbuffer)
    row["lce_bconv2d"] = deploy.op_census(flatbuffer).get(deploy.BCONV_OP, 0)
    kernels = ("default",) if entry.float_model else ("default", "indirect_bgemm")
    row["latency"] = deploy.measure_latency(flatbuffer, kernels=kernels, threads=threads, runs=runs)
    for t in threads:
        row[f"latency_ms_{t}t"] = min(r["median_ms"] for r in row["latency"] if r["threads"] == t)
    if train:
        if entry.ir2:
            row["train_ir2_images_per_second"] = train_throughput(model, ir2=True, batch_size=train_batch)[
                "images_per_second"]
        row["train_plain_images_per_second"] = train_throughput(
            entry.build(input_size), ir2=False, batch_size=train_batch)["images_per_second"]
    tf.keras.backend.clear_session()
    return row


def add_ratios(rows: List[dict], threads) -> None:
    base = next((r for r in rows if r["model"] == BASELINE), None)
    if base is None:
        return
    for row in rows:
        if row["dataset"] != base["dataset"]:
            continue
        for t in threads:
            row[f"latency_ratio_{t}t"] = row[f"latency_ms_{t}t"] / base[f"latency_ms_{t}t"]
        row["flops_ratio"] = row["flops"] / base["flops"]


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)


def markdown(rows: List[dict], threads, header: str) -> str:
    t1, t2 = threads[0], threads[-1]
    lines = [
        header,
        "",
        f"| model | input | top-1 (reported) | FLOPs | × FLOPs | .tflite | latency {t1}t | latency {t2}t "
        f"| × latency {t1}t | × latency {t2}t | train img/s (IR² / plain) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        top1 = f"{r['reported_top1']:.1f} % {r['source']}" if r["reported_top1"] else r["source"]
        train = " / ".join(
            _fmt(r.get(k), ".1f") for k in ("train_ir2_images_per_second", "train_plain_images_per_second")
        ) if ("train_plain_images_per_second" in r) else "–"
        lines.append(
            f"| {r['model']} | {r['input']} | {top1} | {r['flops'] / 1e6:,.1f}M | {_fmt(r.get('flops_ratio'), '.3f')} "
            f"| {r['tflite_bytes'] / 1e6:.2f} MB | {r[f'latency_ms_{t1}t']:.1f} ms | {r[f'latency_ms_{t2}t']:.1f} ms "
            f"| {_fmt(r.get(f'latency_ratio_{t1}t'), '.3f')} | {_fmt(r.get(f'latency_ratio_{t2}t'), '.3f')} | {train} |"
        )
    lines += [
        "",
        f"× columns: ratio to the {BASELINE} (IR2ResNet18 without recovery head; ImageNet models only). "
        "Latency: median of LCE's Python interpreter on this host, fastest kernel option per thread count. "
        "Accuracies are reported by their sources, not measured here.",
    ]
    return "\n".join(lines)


def plot(rows: List[dict], path: str, threads) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r["reported_top1"] and r["dataset"] == "imagenet2012"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in (
        (axes[0], f"latency_ms_{threads[0]}t", f"host latency, {threads[0]} thread (ms)"),
        (axes[1], "flops", "FLOPs (BOPs/64 + FP MACs, millions)"),
    ):
        for r in points:
            x = r[key] / (1e6 if key == "flops" else 1)
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
    parser.add_argument("--size", type=int, default=224, help="input size of the ImageNet models (224)")
    parser.add_argument("--runs", type=int, default=10, help="timed inferences per kernel and thread count")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", help="only these rows (names as in the table)")
    parser.add_argument("--train", nargs="*", default=list(DEFAULT_TRAIN),
                        help=f"rows whose training throughput is measured (default: {', '.join(DEFAULT_TRAIN)}; "
                             "'all', or nothing to skip)")
    parser.add_argument("--train_batch", type=int, default=8)
    parser.add_argument("--output_dir", default="benchmark", help="where results.json/.md and tradeoff.png go")


def run(args) -> int:
    chosen = entries()
    if args.models:
        known = {e.name for e in chosen}
        unknown = sorted(set(args.models) - known)
        if unknown:
            raise ValueError(f"Unknown benchmark rows {unknown}; choose from {sorted(known)}.")
        chosen = [e for e in chosen if e.name in args.models]
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create --output_dir {args.output_dir!r} ({error.strerror}).") from error
    train = {e.name for e in chosen} if args.train == ["all"] else set(args.train)
    rows = []
    started = time.perf_counter()
    for index, entry in enumerate(chosen, start=1):
        print(f"[{index}/{len(chosen)}] {entry.name}: converting, timing"
              + (", training" if entry.name in train else "") + " …", flush=True)
        row = measure(entry, size=args.size, runs=args.runs, threads=args.threads,
                      train=entry.name in train, train_batch=args.train_batch)
        rows.append(row)
        print("    " + ", ".join(f"{t} threads {row[f'latency_ms_{t}t']:.1f} ms" for t in args.threads)
              + f", {row['tflite_bytes']:,} bytes, {row['lce_bconv2d']} LceBconv2d, converted in "
              f"{row['convert_seconds']:.1f} s", flush=True)
    add_ratios(rows, args.threads)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}"
    header = f"Measured {when} on {machine} by `python -m zoo benchmark` ({time.perf_counter() - started:.0f} s)."
    table = markdown(rows, args.threads, header)
    atomic_write(os.path.join(args.output_dir, "results.json"),
                 json.dumps({"date": when, "machine": machine, "rows": rows}, indent=2).encode())
    atomic_write(os.path.join(args.output_dir, "results.md"), (table + "\n").encode())
    plot(rows, os.path.join(args.output_dir, "tradeoff.png"), args.threads)
    print()
    print(table)
    print(f"\nWrote {args.output_dir}/results.json, results.md and tradeoff.png")
    return 0
