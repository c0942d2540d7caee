"""The export as one Python call: a Keras model or a finished training run to
a verified LCE ``.tflite`` file and its ``.json`` report.

    from ir2net_tf.export import export_model

    report = export_model("runs/demo", "demo.tflite", latency_runs=0)
    print(report.summary())

``export_model`` converts the model (``export.convert``), checks the
flatbuffer's op census against the model (``export.census``), runs the file
in LCE's interpreter against Keras on the run's held-out images, random
inputs and ``images`` (``export.parity``, judged by ``parity.judge``),
optionally evaluates it on a validation split and times it
(``export.latency``), then writes the ``.tflite`` (only when every check
passed) and its report together (``export.writing``). ``python -m export``
is a thin wrapper over it.
"""

import os
import time
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import ir2net_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from ir2net_tf import data, path_args, zoo
from ir2net_tf.export import evaluation
from ir2net_tf.export import census, convert, inputs, latency, parity, report, writing
from ir2net_tf.export.errors import DeployError, ExportError
from ir2net_tf.export.interpreter import KERNELS
from ir2net_tf.path_args import DIR, FILE, FILE_OR_DIR, PathArg
from ir2net_tf.runs import artifacts, loading

DEFAULT_VERIFY_IMAGES = 400  # all 360 held-out digits; a few seconds for an ImageNet model
RANDOM_WEIGHTS_NOTE = ("random weights (no --weights): the file's size, ops and latency are real, its predictions "
                       "mean nothing; pass --weights FILE or --model-dir RUN to export a trained model")
STAGE_ONE_NOTE = (
    "this is the stage-1 model of the two-stage recipe: binary activations, real-valued weights, so its "
    "convolutions are float convolutions for LCE and 0 LceBconv2d is expected. Train --stage 2 (same "
    "--model_dir) for the binary model."
)


@dataclass(frozen=True)
class ExportReport:
    """What an export did: the figures of its ``.json`` report, and the files
    it wrote.

    Attributes:
        ok: every check passed and the ``.tflite`` was written.
        failure: why not (one line per failed check, joined by "; "), or None.
        tflite: the ``.tflite`` path written, or None when a check failed
            (an earlier file at that path is then removed).
        report_path: the ``.json`` report, written in either case.
        files: the files written (the ``.tflite`` when ok, and the report).
        size_bytes: the flatbuffer's size.
        census: the op census and its check (``census.check_census``):
            ``ops``, ``lce_bconv2d``, ``binary_convs_keras``, ``ok``, ...
        parity: per input set (``"held-out"``, ``"random"``, ``"images"``)
            the Keras-against-LCE figures (``parity.parity``); empty when not
            verified.
        agreement: per input set, the top-1 agreement of Keras and the file.
        relative_difference: per input set, the median input's mean
            |Keras - LCE| over the outputs' spread (judged at most
            ``parity.MAX_RELATIVE_DIFFERENCE``).
        evaluation: top-1/top-5 of both on a validation split, or None.
        latency: host latency rows (kernel, threads, median_ms, ...).
        warnings: what to know about the file although it passed (random
            weights, a stage-1 model, census notes).
        details: the whole report, as written to ``report_path``.
    """

    ok: bool
    failure: Optional[str]
    tflite: Optional[str]
    report_path: str
    files: Tuple[str, ...]
    size_bytes: int
    census: Mapping
    parity: Mapping[str, Mapping]
    agreement: Mapping[str, float]
    relative_difference: Mapping[str, Optional[float]]
    evaluation: Optional[Mapping]
    latency: Tuple[Mapping, ...]
    warnings: Tuple[str, ...]
    details: Mapping

    def summary(self) -> str:
        """The lines ``python -m export`` prints."""
        return report.summary(self.details)

    @classmethod
    def from_result(cls, result: Dict, report_path: str) -> "ExportReport":
        figures = result.get("parity", {})
        warnings = [result[key] for key in ("weights_note", "note") if result.get(key)]
        warnings += result["census"].get("notes", [])
        return cls(
            ok=result["ok"],
            failure=result["failure"],
            tflite=result["tflite"],
            report_path=report_path,
            files=tuple(path for path in (result["tflite"], report_path) if path),
            size_bytes=result["size_bytes"],
            census=result["census"],
            parity=figures,
            agreement={name: f["top1_agreement"] for name, f in figures.items()},
            relative_difference={name: f.get("relative_median_diff") for name, f in figures.items()},
            evaluation=result.get("evaluation"),
            latency=tuple(result.get("latency", ())),
            warnings=tuple(warnings),
            details=result,
        )


def _checked_options(target, input_type, output_type, int8_range, verify_images, random_samples, min_agreement,
                     batch_size, latency_runs, threads, kernels) -> None:
    """Refuses, before any work, options that cannot work (what the
    command's argument types refuse while parsing)."""
    if target not in convert.TARGETS:
        raise ExportError(f"Unknown target {target!r}; choose one of {list(convert.TARGETS)}.")
    for kind, value in (("input", input_type), ("output", output_type)):
        if value not in convert.IO_TYPES:
            raise ExportError(f"Unknown {kind} type {value!r}; choose one of {list(convert.IO_TYPES)}.")
    check_int8_range(int8_range)
    for name, value, least in (("verify_images", verify_images, 0), ("random_samples", random_samples, 0),
                               ("latency_runs", latency_runs, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ExportError(f"{name} must be a whole number ≥ {least}; got {value!r}.")
    if min_agreement is not None and not 0.0 <= min_agreement <= 1.0:
        raise ExportError(f"min_agreement must be a fraction between 0 and 1; got {min_agreement!r}.")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in threads):
        raise ExportError(f"threads must be whole numbers ≥ 1; got {list(threads)!r}.")
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        raise ExportError(f"Unknown kernel(s) {unknown}; choose from {sorted(KERNELS)}.")


def check_int8_range(int8_range: Optional[Sequence[float]]) -> None:
    """``--int8-range MIN MAX`` needs MIN < MAX."""
    if int8_range is not None:
        low, high = int8_range
        if not low < high:
            raise DeployError(f"--int8-range MIN MAX needs MIN < MAX; got {low:g} {high:g}.")


def _held_out(run, count: int, data_dir: Optional[str]):
    """The run's held-out images and labels, preprocessed as training evaluated them."""
    try:
        dataset = run.dataset(data_dir)
    except ValueError as error:
        folder = data.is_folder(run.settings.get("dataset") or "digits") and run.settings.get("dataset") != "digits"
        hint = "Pass" if folder else "Pass --data-dir, or"  # --data-dir is for tensorflow-datasets only
        raise DeployError(
            f"Cannot load the run's held-out data: {error} {hint} --verify-images 0 to skip this check."
        ) from error
    images, labels = evaluation.held_out(dataset, count)
    return dataset, images, labels


def _verify(model, flatbuffer, run, given, verify_images: int, random_samples: int, data_dir) -> dict:
    """The parity figures; ``given``: the ``images`` (images, labels), loaded before the conversion."""
    shape = tuple(model.input_shape[1:])
    figures = {}
    if run is not None and verify_images > 0 and run.settings:
        dataset, images, labels = _held_out(run, verify_images, data_dir)
        figures["held-out"] = {**parity.parity(model, flatbuffer, images, labels), "dataset": dataset.name}
    if random_samples > 0:
        figures["random"] = parity.parity(model, flatbuffer, parity.random_inputs(shape, random_samples))
    if given is not None:
        figures["images"] = parity.parity(model, flatbuffer, *given)
    return figures


def padding_advice(name: Optional[str], from_run: bool) -> str:
    """What avoids the zero-padding hazard, as the export or training
    accepts it: a run's padding is its own (train again), a zoo model's is
    --pad-values where the model takes 1."""
    try:
        takes_one = 1.0 in zoo.get_spec(name).option_values("pad_values")
    except ValueError:  # a model of one's own
        return "build the model for a larger input, or with pad_values=1.0 in its binary convolutions"
    if from_run:
        return ("train at a larger --image_size" + (" or with --pad_values 1" if takes_one else "")
                + " (a run's padding is its own)")
    return "export a larger --input-size" + (" or use --pad-values 1" if takes_one else "")


def _evaluate(model, flatbuffer, run, dataset_name: str, data_dir, batch_size: int) -> dict:
    """The ``evaluate`` figures; the run's own preprocessing when it trained on that dataset."""
    same = run is not None and run.settings.get("dataset") == dataset_name
    try:
        if same:
            dataset = run.dataset(data_dir)
        else:
            dataset = data.load(dataset_name, image_size=model.input_shape[1], data_dir=data_dir)
        return evaluation.measure_accuracy(model, dataset, flatbuffer=flatbuffer, batch_size=batch_size)
    except ValueError as error:
        raise DeployError(f"--evaluate {dataset_name}: {error}") from error


def _load(model_or_run_dir, weights, logits, model_info, random_weights):
    """(model, its description for the report, the LoadedRun or None, whether its weights are random)."""
    if isinstance(model_or_run_dir, (str, os.PathLike)):
        if weights is not None:
            PathArg(FILE, suffixes=path_args.WEIGHTS_SUFFIXES, checkpoint=True,
                    what="a weights file").check(weights, "weights")
        run = loading.load_run(os.fspath(model_or_run_dir), weights=weights and os.fspath(weights), logits=logits)
        described = {"model": run.config["model"], "weights": run.weights, **run.options,
                     "dataset": run.config.get("dataset"), **(model_info or {})}
        return run.model, described, run, False
    if not isinstance(model_or_run_dir, tf.keras.Model):
        raise ExportError(f"model_or_run_dir must be a Keras model or a run's folder; got "
                          f"{type(model_or_run_dir).__name__}.")
    if weights is not None or logits:
        raise ExportError("weights and logits apply to a run's folder; load the weights into the Keras model "
                          "(model.load_weights) and build it with the outputs to export.")
    model = model_or_run_dir
    return model, {"model": model.name, **(model_info or {})}, None, bool(random_weights)


def export_model(
    model_or_run_dir,
    output: Optional[str] = None,
    *,
    weights: Optional[str] = None,
    logits: bool = False,
    target: str = "arm",
    input_type: str = "float32",
    output_type: str = "float32",
    int8_range: Optional[Sequence[float]] = None,
    verify: bool = True,
    images: Optional[str] = None,
    verify_images: int = DEFAULT_VERIFY_IMAGES,
    random_samples: int = 64,
    min_agreement: Optional[float] = None,
    evaluate: Optional[str] = None,
    data_dir: Optional[str] = None,
    batch_size: int = 64,
    latency_runs: int = 20,
    threads: Sequence[int] = (1, 2),
    kernels: Sequence[str] = ("default", "indirect_bgemm"),
    random_weights: bool = False,
    model_info: Optional[Mapping] = None,
) -> ExportReport:
    """Exports a model to an LCE ``.tflite`` file, verified, with its report.

    Args:
        model_or_run_dir: a Keras model (``ir2net_tf.zoo`` or one's own), or
            the folder of a ``python -m train`` run (its config.json and
            weights rebuild the model).
        output: the ``.tflite`` path; its report goes beside it as ``.json``.
            Default for a run: ``<run>/model.tflite``; a model needs one.
        weights: a run's weights file to export instead of its best (else
            final) weights.
        logits: a run's model without its final softmax.
        target: LCE target, ``"arm"`` or ``"xcore"``.
        input_type, output_type: ``"float32"`` or ``"int8"`` (int8 needs
            ``int8_range``, LCE's dummy quantization, for latency tests).
        int8_range: (MIN, MAX) of LCE's experimental default int8 range.
        verify: check the file against Keras (False: census only).
        images: a ``.npy``/``.npz`` (x, y) file or image file/folder, an
            extra parity check.
        verify_images: a run's first N held-out images for the parity check.
        random_samples: random inputs for the parity check.
        min_agreement: also judge top-1 agreement on labelled inputs, at
            least this fraction (int8 files always are, at 0.99, or 0.8 for
            random weights).
        evaluate: top-1/top-5 of the file and of Keras on the validation
            split of this dataset (as ``python -m train --dataset``).
        data_dir: tensorflow-datasets data directory (``evaluate``, a run's
            held-out split).
        batch_size: batch size of ``evaluate``.
        latency_runs: timed host runs per kernel and thread count; 0 skips.
        threads, kernels: what to time (``export.interpreter.KERNELS``).
        random_weights: the Keras model's weights are random (not trained):
            judged by the random-weights agreement and the report says so.
        model_info: extra fields for the report's ``model`` entry (its zoo
            name, variant, weights file, ...).

    Returns:
        The ``ExportReport``. A failed check is not an exception: ``ok`` is
        False, ``failure`` says why, no ``.tflite`` is written (an earlier
        one at ``output`` is removed) and the report is.

    Raises:
        ExportError: a model, run, option or file that cannot be exported,
            before anything is written; the message says how to fix it.
    """
    try:
        return _export(model_or_run_dir, output, weights=weights, logits=logits, target=target,
                       input_type=input_type, output_type=output_type, int8_range=int8_range, verify=verify,
                       images=images, verify_images=verify_images, random_samples=random_samples,
                       min_agreement=min_agreement, evaluate=evaluate, data_dir=data_dir, batch_size=batch_size,
                       latency_runs=latency_runs, threads=threads, kernels=kernels, random_weights=random_weights,
                       model_info=model_info)
    except ExportError:
        raise
    except (DeployError, ValueError) as error:  # bad input, found by the layer that met it
        raise ExportError(str(error)) from error


def _export(model_or_run_dir, output, *, weights, logits, target, input_type, output_type, int8_range, verify,
            images, verify_images, random_samples, min_agreement, evaluate, data_dir, batch_size, latency_runs,
            threads, kernels, random_weights, model_info) -> ExportReport:
    _checked_options(target, input_type, output_type, int8_range, verify_images, random_samples, min_agreement,
                     batch_size, latency_runs, threads, kernels)
    from_run = isinstance(model_or_run_dir, (str, os.PathLike))
    if from_run:
        PathArg(DIR, what="a run's folder").check(model_or_run_dir, "model_or_run_dir")
    if output is None:
        if not from_run:
            raise ExportError("output: give the .tflite path to write (a Keras model has no run folder to "
                              "write it in).")
        output = os.path.join(os.fspath(model_or_run_dir), artifacts.TFLITE)
    output = os.fspath(PathArg(FILE, must_exist=False, suffixes=(".tflite",)).check(output, "output"))
    writing.check_writable(output)
    writing.check_writable(report.report_path(output))
    model, described, run, random_weights = _load(model_or_run_dir, weights, logits, model_info, random_weights)
    # Bad images are bad input, found before the slow conversion; never a
    # failed check that would remove an earlier export.
    given = None
    if images and verify:
        path = PathArg(FILE_OR_DIR, suffixes=path_args.ARRAY_SUFFIXES + inputs.IMAGE_SUFFIXES).check(images, "images")
        given = inputs.load_images(os.fspath(path), tuple(model.input_shape[1:]))
    if data_dir is not None:
        data_dir = os.fspath(PathArg(DIR).check(data_dir, "data_dir"))
    int8_range = list(int8_range) if int8_range is not None else None
    start = time.perf_counter()
    flatbuffer = convert.convert(
        model, target=target, input_type=input_type, output_type=output_type, int8_range=int8_range,
    )
    result = {
        "tflite": output,
        "model": {"name": model.name, **described, "input_shape": list(model.input_shape[1:])},
        "target": target,
        "input_type": input_type,
        "output_type": output_type,
        "int8_range": int8_range,
        "convert_seconds": time.perf_counter() - start,
        "size_bytes": len(flatbuffer),
        "census": census.check_census(census.op_census(flatbuffer), census.keras_conv_counts(model), target),
        "random_weights": random_weights,
    }
    if random_weights:
        result["weights_note"] = RANDOM_WEIGHTS_NOTE
    failures = list(result["census"]["problems"])
    quantized = "int8" in (input_type, output_type)
    threshold = min_agreement
    if threshold is None:
        threshold = parity.RANDOM_WEIGHTS_MIN_AGREEMENT if random_weights else parity.DEFAULT_MIN_AGREEMENT
    if verify:
        result["parity"] = _verify(model, flatbuffer, run, given, verify_images, random_samples, data_dir)
        result["min_agreement"] = threshold
        result["max_relative_difference"] = parity.MAX_RELATIVE_DIFFERENCE
        hazards = convert.zero_padding_hazards(model)
        failures += parity.judge(result["parity"], threshold, quantized=quantized, top1=min_agreement is not None,
                                 random_weights=random_weights and not hazards)
        if failures and hazards:
            failures.append(
                "LCE computes zero-padded binary convolutions wrongly on maps smaller than the kernel: "
                f"{', '.join(hazards)}; {padding_advice(described.get('model'), from_run)}"
            )
    if evaluate:
        result["evaluation"] = _evaluate(model, flatbuffer, run, evaluate, data_dir, batch_size)
        if (quantized or min_agreement is not None) and result["evaluation"]["agreement"] < threshold:
            failures.append(f"top-1 agreement on {evaluate} {100 * result['evaluation']['agreement']:.2f} % "
                            f"< {100 * threshold:.1f} % (--min-agreement)")
    if latency_runs > 0:
        result["latency"] = latency.measure_latency(
            flatbuffer, kernels=list(kernels), threads=list(threads), runs=latency_runs
        )
    if described.get("binary_weights") is False:
        result["note"] = STAGE_ONE_NOTE
    result["ok"] = not failures
    result["failure"] = "; ".join(failures) or None
    writing.write_out(output, flatbuffer, result)
    return ExportReport.from_result(result, report.report_path(output))
