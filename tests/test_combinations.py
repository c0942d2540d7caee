"""Features together: the combinations a user can ask for, generated from the
registries (``zoo.MODELS``, ``layers.BINARIZERS``, the stage plans
``settings_check.STAGES``, the recovery head where a spec has one, the
strategies), each the smallest run there is, with the same invariants:

- it finishes, or it is refused in one line before any file is written;
- every accuracy in ``metrics.csv`` lies in [0, 1] and equals (within one
  example) what a one-process evaluate of the weights it describes gives;
- a finished run exports with a passing census (a stage-1 run: as the
  real-weights model, 0 ``LceBconv2d``);
- a run killed and restarted ends where one that was not killed does.

Models come in families (``family``: method, total stride, flattening head);
a family is trained through its cheapest member (fewest binary weights). A
model, binarizer or strategy joins by being registered. The suite trains the
cheapest family of each method, each binarizer and head setting once per
model, the stage plans dealt out over those cells (``IR2NET_FULL_MATRIX=1``:
every family, every binarizer × head setting); every plan, binarizer, head
setting and method is met. Refused combinations (a recovery head on a model
without one) are checked for every family; mirrored and multi_worker
(tests/test_multi_worker.py) run one model per trained family.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import zoo
from ir2net_tf.nn import layers
from ir2net_tf.export import cli as export_cli
from ir2net_tf.runs import artifacts, lock, recipes, run, settings_check

from tests_support import ENV, REPO, check_metrics_match_evaluate, cli, weights_file_values

FULL = os.environ.get("IR2NET_FULL_MATRIX") == "1"
STEPS = 2  # --steps_per_epoch of every cell
BATCH = 16
# A plan is the invocations of one model directory: "both" is trained as
# --stage 1 and then --stage both in the same directory (the stage is not
# part of a run's identity), so that the stage-1 state is checked too.
PLANS = {"both": ("1", "both"), "2": ("2",), "1": ("1",)}
assert set(PLANS) == set(settings_check.STAGES)


def family(spec) -> tuple:
    """Models that differ only in depth or in widths: the same method, total
    stride, kind of head and binary convolutions (a larq-zoo backbone keeps
    larq-zoo's own)."""
    return spec.method, spec.stride, spec.flatten, spec.option_values("binarizer")


def cost(spec) -> tuple:
    """Fewest binary weights first; a model that does not declare its count
    (a larq-zoo backbone) after every model that does."""
    return spec.binary_weights is None, spec.binary_weights or 0


def representatives() -> dict:
    """family → its cheapest model (fewest binary weights; the first registered on a tie)."""
    chosen = {}
    for spec in zoo.MODELS.values():
        best = chosen.get(family(spec))
        if best is None or cost(spec) < cost(best):
            chosen[family(spec)] = spec
    return chosen


def trained_families() -> list:
    """The families the suite trains: all, or the cheapest of each method."""
    specs = list(representatives().values())
    if FULL:
        return specs
    methods = {}
    for spec in specs:
        methods.setdefault(spec.method, []).append(spec)
    return [min(group, key=cost) for group in methods.values()]


def smallest_size(spec) -> int:
    return max(8, spec.min_size or spec.stride)


@dataclasses.dataclass(frozen=True)
class Cell:
    model: str
    binarizer: str
    recovery: bool
    plan: str

    @property
    def name(self):
        return f"{self.model}-{self.binarizer}-{'recovery' if self.recovery else 'bare'}-stage{self.plan}"


def cells() -> list:
    """The trained cells. For each trained model: every binarizer × head
    setting its spec allows (IR2NET_FULL_MATRIX=1), else each binarizer and
    each head setting once (a diagonal of the two, the model's own binarizer
    last, so that each model meets the other one first). The stage plans are
    dealt out in turn over all cells, "both" first."""
    out = []
    order = ("both", "2", "1")
    for spec in trained_families():
        own = "irnet" if spec.method == "irnet" else "bireal"
        binarizers = sorted(spec.option_values("binarizer"), key=lambda b: b == own)
        heads = (True, False) if spec.has_recovery else (False,)
        if FULL:
            combos = [(b, r) for b in binarizers for r in heads]
        else:
            combos = [(binarizers[i % len(binarizers)], heads[i % len(heads)])
                      for i in range(max(len(binarizers), len(heads)))]
        out += [Cell(spec.name, b, r, order[(len(out) + i) % len(order)]) for i, (b, r) in enumerate(combos)]
    return out


def refused_cells() -> list:
    """A head or a binarizer the spec does not have: refused before any file."""
    out = []
    for spec in representatives().values():
        allowed = spec.option_values("binarizer")
        if not spec.has_recovery:
            out.append(Cell(spec.name, allowed[0], True, "both"))
        out += [Cell(spec.name, b, spec.has_recovery, "both") for b in layers.BINARIZERS if b not in allowed]
    return out


def settings_for(cell, stage, **extra):
    spec = zoo.get_spec(cell.model)
    given = dict(model=cell.model, image_size=smallest_size(spec), batch_size=BATCH, epochs=1,
                 steps_per_epoch=STEPS, stage=stage, binarizer=cell.binarizer, recovery=cell.recovery, **extra)
    settings = recipes.resolve("digits", given)
    settings.setdefault("data_dir", None)
    settings.setdefault("manual_dir", None)
    return settings


def check_exports(model_dir, tmp_path, capsys, binary):
    output = str(tmp_path / "export" / "model.tflite")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    code = export_cli.main(["--model-dir", model_dir, "--no-verify", "--latency-runs", "0", "--output", output])
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    report = json.load(open(output[: -len(".tflite")] + ".json"))
    census = report["census"]
    assert report["ok"] and not census["problems"], census
    if binary:
        assert census["lce_bconv2d"] == census["binary_convs_keras"] > 0
    else:  # the real-weights model says so
        assert census["lce_bconv2d"] == 0 and "stage-1 model" in printed.out and "0 LceBconv2d" in printed.out


def test_the_matrix_comes_from_the_registries():
    """Every registered model has a family and a trained representative in
    the full matrix; the suite's cells meet every binarizer, plan and head
    setting; a newly registered model of a new shape is a new family."""
    assert {family(s) for s in zoo.MODELS.values()} == set(representatives())
    suite = cells()
    assert {c.binarizer for c in suite} == set(layers.BINARIZERS)
    assert {c.plan for c in suite} == set(PLANS)
    assert {c.recovery for c in suite} == {True, False}
    assert {zoo.get_spec(c.model).method for c in suite} == {s.method for s in zoo.MODELS.values()}
    new = dataclasses.replace(zoo.get_spec("IR2ResNet20"), name="ProbeNet", stride=2, binary_weights=1)
    zoo.MODELS["ProbeNet"] = new
    try:
        assert representatives()[family(new)] is new
        if FULL:
            assert "ProbeNet" in {c.model for c in cells()}
    finally:
        del zoo.MODELS["ProbeNet"]


@pytest.mark.slow
@pytest.mark.parametrize("cell", cells(), ids=lambda c: c.name)
def test_cell(cell, tmp_path, capsys):
    model_dir = str(tmp_path / "run")
    for stage in PLANS[cell.plan]:
        rows = run.Run(settings_for(cell, stage), model_dir=model_dir, verbose=0).train()
        assert f"of {STEPS} steps" in capsys.readouterr().out  # the banner counts the steps the limit leaves
        wanted = "1" if stage == "1" else "2"
        assert {r["stage"] for r in rows} >= {wanted}
        config = json.load(open(os.path.join(model_dir, artifacts.CONFIG)))
        assert config["stages_completed"][-1] == wanted and config["binarizer"] == cell.binarizer
        assert not os.path.exists(os.path.join(model_dir, lock.LOCK))
        check_metrics_match_evaluate(model_dir, wanted)
    check_exports(model_dir, tmp_path, capsys, binary=cell.plan != "1")


@pytest.mark.parametrize("cell", refused_cells(), ids=lambda c: c.name)
def test_refused_cell(cell, tmp_path):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError) as refused:
        run.Run(settings_for(cell, "both"), model_dir=str(model_dir), verbose=0)
    message = str(refused.value)
    flag = "--binarizer" if cell.binarizer not in zoo.get_spec(cell.model).option_values("binarizer") else "--recovery"
    assert "\n" not in message and flag in message and "--image_size" not in message, message
    assert not model_dir.exists() or not os.listdir(model_dir)


@pytest.mark.slow
def test_stage2_from_weights_of_another_binarizer_is_refused_before_any_file(tmp_path):
    """--stage 2 --init_weights: the stage-1 file must fit the stage-2 model;
    another binarizer's file is refused at once, naming --binarizer."""
    cell = Cell("IR2ResNet20", "bireal", True, "1")
    stage1 = zoo.build(cell.model, input_shape=(8, 8, 3), num_classes=10, binary_weights=False,
                       classifier_activation=None)
    path = str(tmp_path / "stage1.weights.h5")
    stage1.save_weights(path)
    model_dir = tmp_path / "run"
    irnet = dataclasses.replace(cell, binarizer="irnet")
    with pytest.raises(ValueError, match="--binarizer bireal"):
        run.Run(settings_for(irnet, "2"), model_dir=str(model_dir), verbose=0, init_weights=path)
    assert not os.listdir(model_dir)


# ------------------------------------------------------------ other processes

@pytest.mark.slow
def test_two_runs_at_once_then_kill_and_restart(tmp_path):
    """Two different trainings started at once on one directory: one runs,
    the other exits at once naming the directory and the holder. The one
    that runs is SIGKILLed mid-epoch (its lock stays behind), started again
    (the stale lock is taken over) and ends with the weights of a run that
    was never interrupted, its --steps_per_epoch limit included."""
    model_dir = str(tmp_path / "run")
    common = ["--image_size=8", "--batch_size=16", "--epochs=2", "--steps_per_epoch=4", "--checkpoint_every=1",
              "--verbose=0", f"--model_dir={model_dir}"]
    first, second = cli(*common, "--seed=1"), cli(*common, "--seed=2")
    ckpt_dir = os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")
    refused, winner, winner_seed = None, None, None
    deadline = time.time() + 300
    while refused is None and time.time() < deadline:
        for process, loser, seed in ((first, second, 1), (second, first, 2)):
            if process.poll() is not None:
                refused, winner, winner_seed = process, loser, 3 - seed
        time.sleep(0.05)
    _, err = refused.communicate()
    assert refused.returncode != 0 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert model_dir in last and "in use by another run" in last and f"pid {winner.pid}" in last, err[-3000:]
    # SIGKILL mid-epoch 2 (optimizer steps 5 to 7 of 8).
    while winner.poll() is None and time.time() < deadline:
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        if latest and 4 < int(latest.rsplit("-", 1)[1]) < 8:
            break
        time.sleep(0.02)
    assert winner.poll() is None, winner.communicate()[1][-3000:]
    winner.send_signal(signal.SIGKILL)
    winner.communicate()
    assert os.path.exists(os.path.join(model_dir, lock.LOCK))  # left behind by the kill
    resumed = cli(*common, f"--seed={winner_seed}")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert "Resuming stage 2" in err and "no longer running" in err
    config = json.load(open(os.path.join(model_dir, artifacts.CONFIG)))
    assert config["training"]["seed"] == winner_seed and config["stages_completed"] == ["2"]
    # The same run, never interrupted.
    settings = recipes.resolve("digits", dict(image_size=8, batch_size=16, epochs=2, steps_per_epoch=4,
                                              seed=winner_seed))
    straight = str(tmp_path / "straight")
    run.Run(settings, model_dir=straight, checkpoint_every=1, verbose=0).train()
    a = weights_file_values(os.path.join(model_dir, artifacts.FINAL_WEIGHTS))
    b = weights_file_values(os.path.join(straight, artifacts.FINAL_WEIGHTS))
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    rows = [artifacts.read_metrics(os.path.join(d, artifacts.METRICS)) for d in (model_dir, straight)]
    assert [r["val_accuracy"] for r in rows[0]] == [r["val_accuracy"] for r in rows[1]]


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tmp_path, capsys):
    """One model per trained family under MirroredStrategy on two logical
    CPUs (a fresh process, before TensorFlow starts): the metrics are the
    mean over the validation examples, as one process evaluates them."""
    for spec in trained_families():
        model_dir = str(tmp_path / spec.name)
        args = [f"--model={spec.name}", f"--image_size={smallest_size(spec)}", "--batch_size=16", "--epochs=1",
                f"--steps_per_epoch={STEPS}", "--verbose=0", "--strategy=mirrored", f"--model_dir={model_dir}"]
        script = textwrap.dedent(f"""
            import sys
            import ir2net_tf  # before TensorFlow: selects Keras 2
            import tensorflow as tf
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            sys.argv = ["train", *{args!r}]
            from ir2net_tf.runs import cli
            cli.run()
        """)
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        check_metrics_match_evaluate(model_dir, "2")


# ------------------------------------------------------------ mixed precision

def _tiny_binary_model():
    import larq as lq

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(8, 3, padding="same", use_bias=False, input_quantizer="approx_sign",
                              kernel_quantizer="ste_sign")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Activation("linear", name=zoo.FEATURES_LAYER)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(10, dtype="float32")(x))


@pytest.mark.parametrize("lam, kept_all", [(1e-6, True), (1.0, False)])  # the one-pass shortcut / two passes
def test_mixed_float16_step_equals_float32(lam, kept_all):
    """One IR² step under mixed_float16 (loss scaling through both passes)
    applies float32's update to float16's precision."""
    from ir2net_tf.training.trainer import IR2Trainer

    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 8, 8, 3)).astype(np.float32)
    x[:, :4, :4] += 3.0
    y = rng.integers(0, 10, size=8).astype(np.int32)
    updates = {}
    for policy in ("float32", "mixed_float16"):
        tf.keras.mixed_precision.set_global_policy(policy)
        try:
            model = _tiny_binary_model()
            trainer = IR2Trainer(model, restriction_lambda=lam, weight_decay=1e-3)
            trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1))
            before = [v.numpy() for v in model.trainable_variables]
            logs = trainer.train_step((tf.constant(x), tf.constant(y)))
            updates[policy] = [b - v.numpy() for b, v in zip(before, model.trainable_variables)]
            assert (float(logs["kept"]) == 1.0) == kept_all
            if policy != "float32":
                assert isinstance(trainer.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        finally:
            tf.keras.mixed_precision.set_global_policy("float32")
    for exact, half in zip(updates["float32"], updates["mixed_float16"]):
        scale = float(np.abs(exact).max())
        assert scale > 0
        np.testing.assert_allclose(half, exact, rtol=0, atol=2e-2 * scale)


# ------------------------------------------------------------ stored dataset paths

def test_a_folder_dataset_is_stored_absolute_and_an_old_relative_one_is_found(tmp_path, monkeypatch):
    from test_data import _write_images

    from ir2net_tf.runs import loading

    monkeypatch.chdir(tmp_path)
    _write_images(str(tmp_path / "pets"), ["cat", "dog"], 10)
    assert run.absolute_dataset({"dataset": "./pets"}) == {"dataset": str(tmp_path / "pets")}
    assert run.absolute_dataset({"dataset": "cifar10"}) == {"dataset": "cifar10"}
    # A run from before: "./pets", relative to where it trained (tmp_path).
    old = loading.LoadedRun(model=None, config={}, weights="", settings={"dataset": "./pets"},
                            model_dir=str(tmp_path / "runs" / "r"))
    os.makedirs(tmp_path / "runs" / "r")
    monkeypatch.chdir(tmp_path / "runs")
    assert os.path.samefile(old.dataset_path(), tmp_path / "pets")
    lost = dataclasses.replace(old, settings={"dataset": "./cats"})
    with pytest.raises(ValueError, match=r"stored relative .*Run this command from the directory training ran in"):
        lost.dataset_path()
