"""Export verification judges every input set by the outputs' difference
against their spread, and labelled ones also by top-1 agreement where a
correct conversion cannot change the top-1 (not on near-ties)."""

import numpy as np

from ir2net_tf import deploy
from ir2net_tf.export import parity, report


def _figures(samples, near_ties, disagreements_judged, near_disagreements):
    judged = samples - near_ties
    return {
        "samples": samples, "top1_agreement": 1 - (disagreements_judged + near_disagreements) / samples,
        "close_fraction": 0.9, "max_abs_diff": 0.2, "max_abs_output": 1.0, "near_tie_margin": 0.05,
        "near_ties": near_ties, "near_tie_disagreements": near_disagreements, "judged": judged,
        "judged_agreement": 1 - disagreements_judged / judged,
    }


def test_a_near_tie_disagreement_does_not_fail_a_correct_conversion():
    # The case: 1 of 64 random inputs, a near-tie, disagreed (98.4 % < 99 %).
    figures = _figures(64, near_ties=3, disagreements_judged=0, near_disagreements=1)
    assert figures["top1_agreement"] < deploy.DEFAULT_MIN_AGREEMENT
    assert deploy.agreement_failure("random", figures, deploy.DEFAULT_MIN_AGREEMENT) is None
    line = report._parity_line("random", figures)
    assert "3 near-tie(s)" in line and "1 of them disagreeing" in line


def test_disagreement_outside_near_ties_fails_and_names_the_override():
    figures = _figures(64, near_ties=2, disagreements_judged=5, near_disagreements=0)
    why = deploy.agreement_failure("random", figures, deploy.DEFAULT_MIN_AGREEMENT)
    assert why and "62 of 64 random inputs" in why and "--min-agreement" in why


def test_mostly_near_ties_are_judged_on_every_input():
    # Flat outputs (e.g. random weights): too many near-ties to leave out.
    figures = _figures(48, near_ties=40, disagreements_judged=0, near_disagreements=20)
    why = deploy.agreement_failure("random", figures, deploy.RANDOM_WEIGHTS_MIN_AGREEMENT)
    assert why and "all 48 random inputs" in why and "40 near-ties" in why


def test_summary_of_a_failed_export_says_nothing_was_written():
    result = {
        "model": {"name": "m", "variant": None}, "tflite": None, "size_bytes": 1, "target": "arm",
        "input_type": "float32", "output_type": "float32", "convert_seconds": 1.0, "ok": False, "failure": "x",
        "census": {"total_ops": 1, "ops": {}, "lce_bconv2d": 1, "binary_convs_keras": 1, "float_conv_ops": 3,
                   "float_convs_keras": 3, "binarize_ops": {}, "int8_ops": {}, "problems": []},
    }
    lines = report.summary(result).splitlines()
    assert "None" not in lines[0] and "nothing written" in lines[0]
    assert "float convolutions 3 for 3 in the Keras model" in report.summary(result)


# ------------------------------------------------ the outputs against their spread


def test_the_difference_is_measured_against_the_outputs_spread():
    rng = np.random.default_rng(0)
    keras = rng.normal(size=(64, 10)).astype(np.float32)
    rounding = deploy.output_difference(keras, keras + rng.normal(scale=1e-6, size=keras.shape))
    assert rounding["relative_median_diff"] < 1e-5 and abs(rounding["output_spread"] - 1) < 0.1
    # Another model's outputs: two independent draws differ by 2/sqrt(pi) ≈ 1.13 spreads.
    unrelated = deploy.output_difference(keras, rng.normal(size=keras.shape))
    assert 0.9 < unrelated["relative_median_diff"] < 1.4
    # Near-uniform probabilities (a model trained for one epoch): the same
    # ratio at a thousandth of the scale, where top-1 would be luck.
    flat = deploy.output_difference(0.1 + 1e-3 * keras, 0.1 + 1e-3 * rng.normal(size=keras.shape))
    assert abs(flat["relative_median_diff"] - unrelated["relative_median_diff"]) < 0.3
    assert deploy.difference_failure("random", {**unrelated, "samples": 64}) is not None
    assert deploy.difference_failure("random", {**rounding, "samples": 64}) is None


def test_a_few_rounding_flipped_inputs_do_not_fail_a_correct_conversion():
    # The one-epoch IR2QuickNet at 64 px, random inputs (seed 1): 7 of 64
    # inputs had an activation binarize the other way, moving their outputs
    # by up to 8.8 spreads; the mean over inputs was 0.067, the median 2e-5.
    rng = np.random.default_rng(1)
    keras = rng.normal(size=(64, 10)).astype(np.float32)
    lce = keras + rng.normal(scale=1e-5, size=keras.shape)
    lce[:7] += rng.normal(scale=1.0, size=(7, 10))
    figures = deploy.output_difference(keras, lce)
    assert figures["relative_mean_diff"] > 10 * deploy.MAX_RELATIVE_DIFFERENCE
    assert deploy.difference_failure("random", {**figures, "samples": 64}) is None
    # Every input moved a little (one filter of the last layer negated: 0.07): refused.
    figures = deploy.output_difference(keras, keras + rng.normal(scale=0.07, size=keras.shape))
    assert deploy.difference_failure("random", {**figures, "samples": 64}) is not None


def _parity(agreement, relative, labelled):
    figures = {**_figures(64, near_ties=0, disagreements_judged=round(64 * (1 - agreement)), near_disagreements=0),
               "relative_median_diff": relative, "relative_mean_diff": relative, "output_spread": 0.01}
    return {**figures, "keras_accuracy": 0.5, "lce_accuracy": 0.5} if labelled else figures


def test_top1_is_reported_and_judged_only_when_asked_for():
    # The one-epoch IR2QuickNet: 98.4 % top-1 on random inputs, its
    # outputs equal up to rounding: exported. So is a model a few steps old
    # with 90 % on its held-out images (a correct conversion among near-ties).
    assert parity.judge({"random": _parity(0.984, 1e-5, labelled=False)}, deploy.DEFAULT_MIN_AGREEMENT) == []
    assert parity.judge({"held-out": _parity(0.9, 1e-5, labelled=True)}, deploy.DEFAULT_MIN_AGREEMENT) == []
    # --min-agreement asks for top-1 on labelled inputs.
    (why,) = parity.judge({"held-out": _parity(0.9, 1e-5, labelled=True)}, deploy.DEFAULT_MIN_AGREEMENT, top1=True)
    assert "top-1 agreement 90.6 %" in why
    assert parity.judge({"random": _parity(0.9, 1e-5, labelled=False)}, deploy.DEFAULT_MIN_AGREEMENT, top1=True) == []
    # Outputs a spread apart fail whatever their top-1 (a negated kernel can keep every top-1).
    (why,) = parity.judge({"random": _parity(1.0, 1.2, labelled=False)}, deploy.DEFAULT_MIN_AGREEMENT)
    assert "1.2 of the outputs' spread" in why and "64 random inputs" in why


def test_int8_files_are_judged_by_top1_on_every_set():
    # Dummy int8 quantization rounds every output on purpose: the difference
    # is not judged, top-1 agreement is (random inputs included).
    rounded = {"random": _parity(1.0, 0.05, labelled=False)}
    assert parity.judge(rounded, deploy.DEFAULT_MIN_AGREEMENT, quantized=True) == []
    assert parity.judge(rounded, deploy.DEFAULT_MIN_AGREEMENT) != []
    (why,) = parity.judge({"random": _parity(0.5, 0.05, labelled=False)}, deploy.DEFAULT_MIN_AGREEMENT, quantized=True)
    assert "top-1 agreement 50.0 %" in why


def _flipped(moved: int, samples: int = 64, every_input_a_little: float = 0.0):
    """Parity figures of a random-weights model whose ``moved`` inputs each
    met a rounding flip (moved by about a spread), the others equal."""
    rng = np.random.default_rng(2)
    keras = rng.normal(size=(samples, 10)).astype(np.float32)
    lce = keras + rng.normal(scale=max(1e-6, every_input_a_little), size=keras.shape)
    lce[:moved] += rng.normal(scale=1.0, size=(moved, 10))
    close = np.abs(lce - keras).max(axis=1) <= 1e-3 * np.abs(keras).max()
    return {**_figures(samples, 0, 0, 0), **deploy.output_difference(keras, lce), "close_fraction": float(close.mean())}


def test_rounding_flips_in_most_inputs_pass_only_for_random_weights():
    # IR2ResNet34 at 224 with random weights (docs/verification.md, "Rounding
    # flips"): 43 of 64 inputs moved by flips, 21 equal; the median fails.
    figures = _flipped(43)
    assert deploy.difference_failure("random", figures) is not None
    assert parity.rounding_flips(figures) and "21 of 64" in parity.rounding_flips(figures)
    assert parity.judge({"random": dict(figures)}, deploy.DEFAULT_MIN_AGREEMENT, random_weights=True) == []
    judged = {"random": dict(figures)}
    parity.judge(judged, deploy.DEFAULT_MIN_AGREEMENT, random_weights=True)
    assert "rounding flips" in report._parity_line("random", judged["random"])
    # Trained weights: the median judges, as before.
    assert parity.judge({"random": dict(figures)}, deploy.DEFAULT_MIN_AGREEMENT) != []
    # A conversion that computes something else moves every input: refused, random weights or not.
    wrong = _flipped(0, every_input_a_little=0.07)
    assert wrong["close_fraction"] == 0 and parity.rounding_flips(wrong) is None
    assert parity.judge({"random": wrong}, deploy.DEFAULT_MIN_AGREEMENT, random_weights=True) != []


def test_the_sweep_judges_as_the_export_and_names_the_zero_padding_fault():
    from ir2net_tf.catalog import verify

    assert verify.judge_parity(_flipped(0), []) == (None, None)
    failure, note = verify.judge_parity(_flipped(43), [])
    assert failure is None and note.startswith("rounding flips")
    failure, note = verify.judge_parity(_flipped(43), ["stage3_block1_bconv (2x2 input)"])
    assert note is None and "zero-padded binary convolutions" in failure
    failure, _ = verify.judge_parity(_flipped(60), [])
    assert failure.startswith("parity:") and "computes something else" in failure
    # A stored row of the old agreement rule is judged again from its figures.
    row = {"ok": False, "failures": ["agreement: top-1 agreement 79.7 % < 80.0 %"], "hazards": [],
           "agreement": _flipped(0)}
    assert verify._rejudged(row)["ok"] and verify._rejudged(row)["failures"] == []
