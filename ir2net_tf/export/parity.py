"""Parity of an export: how far the flatbuffer's outputs, run in LCE's
interpreter, are from the Keras model's, and whether they are as close as a
correct conversion leaves them (``judge``)."""

from typing import Dict, List, Optional, Sequence

import numpy as np

from ir2net_tf.export.errors import DeployError
from ir2net_tf.export.interpreter import CLOSE_TOLERANCE, run_flatbuffer

# A binarized network is exact in its binary convolutions, but its float parts
# (stem, batch norm folded into the bconv output transform, recovery head) are
# computed in a different order by LCE. An activation within float rounding of
# zero can then binarize to the other sign, which changes a few outputs by a
# lot: so the largest absolute difference can be large while the top-1 class
# almost always agrees. The default threshold allows 1 disagreement in 100.
DEFAULT_MIN_AGREEMENT = 0.99
# Random weights leave small margins between the logits, so one such sign flip
# changes the top-1 class far more often than in a trained model (IR2ResNet34
# at 96×96: 6 of 32 inputs had a flip, 2 changed class). The conversion bugs
# we met dropped agreement to 6-70 % and left almost no input close.
RANDOM_WEIGHTS_MIN_AGREEMENT = 0.8
# An input whose Keras top-1 leads the runner-up by at most this fraction of
# the output scale is a near-tie: one binary activation flipped by float
# rounding (above) can swap its top two classes in a correct conversion, so
# its agreement measures luck. Verification judges the other inputs and
# reports near-ties apart (a 1-in-64 near-tie failed a valid export at 99 %).
NEAR_TIE = 0.05
# The verification's judgement of a conversion on any inputs, random ones
# included (output_difference): the median over the inputs of each input's
# mean |keras - lce|, divided by the spread of the Keras outputs across the
# inputs. Top-1 agreement is judged only on labelled data (held-out,
# --images with y); on random inputs a briefly trained model's near-uniform
# probabilities make it luck (98.4 % for a correct one-epoch IR2QuickNet at
# 64 px). Chosen from measurements (docs/deployment.md, "What verification
# judges"): correct conversions, trained and random-weight, at 16-224 px,
# gave at most 2e-5 (one-epoch IR2QuickNet at 64 px, random inputs); wrong
# ones at least 0.005 (that run with one of the last binary convolution's
# 1024 filters negated, on its held-out digits; 0.019 on random inputs),
# most of them 0.1-10; 1e-3 is 50 times the first and 5 times below the
# second. A smaller threshold would near float rounding where the spread is
# small (it counts as at least CLOSE_TOLERANCE of the largest output).
MAX_RELATIVE_DIFFERENCE = 1e-3
# Random weights only: a conversion that computes something else moves every
# input, but float rounding that flips one binary activation (a value within
# rounding of zero) moves only the inputs where it happens, and in a deep
# network with random weights and batch-norm statistics each such flip spreads
# to the whole output, so the median input can move in a correct conversion
# (docs/verification.md, "Rounding flips": IR2ResNet34 at 224, traced to one
# activation of 1e-5 in stage 2's first block, moved 43 of 64 inputs). When
# at least this fraction of the inputs is equal to rounding, and no layer has
# LCE's zero-padding fault, the difference is read as rounding flips. The
# conversion bugs met so far left almost no input close (above).
ROUNDING_FLIPS_MIN_CLOSE = 0.125


def random_inputs(input_shape: Sequence[int], count: int, seed: int = 0) -> np.ndarray:
    """Standard-normal images: roughly what mean/std-normalized images look like."""
    return np.random.default_rng(seed).standard_normal((count, *input_shape)).astype(np.float32)


def parity(model, flatbuffer: bytes, inputs: np.ndarray, labels: Optional[np.ndarray] = None) -> Dict:
    """Top-1 agreement and largest absolute difference of Keras and LCE
    outputs; agreement also on the inputs that are not near-ties (the Keras
    top-1 leads the runner-up by more than ``NEAR_TIE`` of the output scale),
    the only ones whose top-1 a correct conversion cannot change."""
    expected = model.predict(inputs, batch_size=32, verbose=0)
    actual = run_flatbuffer(flatbuffer, inputs)
    if actual.shape != expected.shape:
        raise DeployError(f"The flatbuffer outputs shape {actual.shape}, Keras {expected.shape}.")
    # One output vector per input: (N, classes) as it is; a model that outputs
    # feature maps (a backbone, a test model) is judged on its whole map.
    flat_expected, flat_actual = expected.reshape(len(inputs), -1), actual.reshape(len(inputs), -1)
    keras_top1, lce_top1 = flat_expected.argmax(1), flat_actual.argmax(1)
    difference = np.abs(flat_actual - flat_expected).max(axis=1)
    scale = max(1.0, float(np.abs(expected).max()))
    tolerance = CLOSE_TOLERANCE * scale
    agree = keras_top1 == lce_top1
    ordered = np.sort(flat_expected, axis=1)
    near = ordered[:, -1] - ordered[:, -2] <= NEAR_TIE * scale
    result = {
        "samples": int(len(inputs)),
        "top1_agreement": float(np.mean(agree)),
        "close_fraction": float(np.mean(difference <= tolerance)),
        "max_abs_diff": float(np.abs(actual - expected).max()),
        "max_abs_output": float(np.abs(expected).max()),
        # Near-ties: reported, not judged.
        "near_tie_margin": NEAR_TIE * scale,
        "near_ties": int(near.sum()),
        "near_tie_disagreements": int((near & ~agree).sum()),
        "judged": int((~near).sum()),
        "judged_agreement": float(np.mean(agree[~near])) if (~near).any() else None,
    }
    result.update(output_difference(flat_expected, flat_actual))
    if labels is not None:
        result["keras_accuracy"] = float(np.mean(keras_top1 == labels))
        result["lce_accuracy"] = float(np.mean(lce_top1 == labels))
    return result


def output_difference(expected: np.ndarray, actual: np.ndarray) -> Dict:
    """How far LCE's outputs are from Keras', against how far Keras' own
    outputs vary from input to input: the figures a correct conversion
    guarantees whatever the model has learned.

    ``expected``, ``actual``: (inputs, outputs). The spread is the standard
    deviation of each Keras output across the inputs, averaged over the
    outputs. Each input's difference is its mean |keras - lce| over the
    outputs, divided by the spread. A model trained for one epoch has
    near-uniform probabilities, whose top-1 on noise is luck, but a spread
    like any other: the ratio is the same for it as for a trained model. A
    correct conversion leaves most inputs equal up to float rounding; a few
    move further, where an activation within rounding of zero binarized to
    the other sign (``DEFAULT_MIN_AGREEMENT``), which is why the median over
    the inputs is judged (``MAX_RELATIVE_DIFFERENCE``), not the mean or the
    largest. A conversion that computes something else moves every input.
    """
    spread = float(expected.std(axis=0).mean()) if len(expected) > 1 else 0.0
    difference = np.abs(actual - expected)
    # Outputs that barely depend on the input (or one input): the spread
    # would sit near float rounding itself; a thousandth of the largest
    # output is the least it counts as.
    floor = CLOSE_TOLERANCE * float(np.abs(expected).max())
    scale = max(spread, floor, float(np.finfo(np.float32).tiny))
    per_input = difference.mean(axis=1) / scale
    return {
        "output_spread": spread,
        "relative_median_diff": float(np.median(per_input)),
        "relative_mean_diff": float(per_input.mean()),
        "relative_max_diff": float(difference.max() / scale),
    }


def difference_failure(name: str, figures: Dict, threshold: float = MAX_RELATIVE_DIFFERENCE) -> Optional[str]:
    """Why the outputs on ``name`` inputs differ more than a correct
    conversion's do (``MAX_RELATIVE_DIFFERENCE``), or None."""
    ratio = figures.get("relative_median_diff")
    if ratio is None or ratio <= threshold:
        return None
    return (f"on the median of the {figures['samples']} {name} inputs the .tflite's outputs differ from Keras' by "
            f"{ratio:.3g} of the outputs' spread across inputs (> {threshold:g}; correct conversions stay near float "
            "rounding, 1e-5): the file computes something else, check the ops above")


def rounding_flips(figures: Dict) -> Optional[str]:
    """A note when the random-weights ``figures`` fail the median only as
    rounding flips do (``ROUNDING_FLIPS_MIN_CLOSE``), else None."""
    close, samples = figures.get("close_fraction", 0.0), figures["samples"]
    if close < ROUNDING_FLIPS_MIN_CLOSE:
        return None
    return (f"rounding flips: {round(close * samples)} of {samples} random inputs equal to rounding, the others "
            "moved by binary activations within rounding of zero, which random weights spread to every output "
            "(docs/verification.md)")


def agreement_failure(name: str, figures: Dict, threshold: float) -> Optional[str]:
    """Why the parity ``figures`` on ``name`` inputs fail ``threshold``, or None.

    Judged on the inputs that are not near-ties when they are at least half
    of them; otherwise (a model with flat outputs) on all inputs, and the
    message says so."""
    judged = figures.get("judged", figures["samples"])
    robust = figures.get("judged_agreement") is not None and 2 * judged >= figures["samples"]
    agreement = figures["judged_agreement"] if robust else figures["top1_agreement"]
    if agreement >= threshold:
        return None
    which = (f"{judged} of {figures['samples']} {name} inputs whose Keras top-1 leads by more than "
             f"{figures['near_tie_margin']:.3g}" if robust else
             f"all {figures['samples']} {name} inputs ({figures.get('near_ties', 0)} near-ties: too many to leave out)")
    return (f"top-1 agreement {100 * agreement:.1f} % < {100 * threshold:.1f} % on {which}; a correct conversion "
            "fails this only on near-ties, so check the ops above, or pass --min-agreement to accept a lower value")


def judge(figures_by_set: Dict[str, Dict], min_agreement: float, quantized: bool = False,
          top1: bool = False, random_weights: bool = False) -> List[str]:
    """Why the parity figures (``{input set name: parity(...)}``) fail, one
    reason per failed check. Every input set is judged by what a correct
    conversion guarantees whatever the model learned: outputs as close as float rounding and rare rounding-flipped
    binarizations leave them, against their spread (output_difference).
    Top-1 agreement is reported, not judged: among a briefly trained model's
    near-uniform probabilities it is luck, on held-out images as on noise,
    and a correct conversion can lose it. It is judged on labelled sets when
    asked for (``top1``: --min-agreement given), and on every set for int8
    input or output (``quantized``: LCE's dummy quantization, latency tests
    only, rounds every output on purpose and is meant to keep the top-1 of
    most inputs). ``random_weights`` (a model with random weights and no
    layer of LCE's zero-padding fault): rounding flips (``rounding_flips``)
    pass, with a note in the figures."""
    failures = []
    # Real images judge the file where there are some (a run's held-out
    # data, --images): random normal noise drives a large trained network
    # far outside its data, where float rounding flips many binarizations
    # (the ImageNet smoke run at 224: 0.09 of the spread on noise, within
    # 1e-3 on its held-out images), so noise is then reported, not judged.
    real = [name for name in figures_by_set if name != "random"]
    for name, figures in figures_by_set.items():
        if name == "random" and real and not quantized:
            continue
        why = None if quantized else difference_failure(name, figures)
        note = rounding_flips(figures) if why and random_weights else None
        if note:
            figures["note"], why = note, None
        if why is None and (quantized or (top1 and "keras_accuracy" in figures)):
            why = agreement_failure(name, figures, min_agreement)
        if why:
            failures.append(why)
    return failures
