"""Numbers you can trust (issue 13): the .tflite file's accuracy on real
data, any weights evaluated, checked against counts made here.

Each accuracy the commands print is compared with an independent count: the
images read and normalized with NumPy, the Keras model built with
ir2net_tf.zoo and the flatbuffer run in LCE's own Interpreter class.
"""

import io
import json
import os
import tempfile
from contextlib import redirect_stdout

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data, deploy, zoo
from ir2net_tf.export import evaluation
from ir2net_tf.export.cli import main as export_main
from ir2net_tf.runs import artifacts

# tfds.testing.mock_data ignores the data directory, but our commands refuse
# one that does not exist (they would not create it): an empty one.
MOCK_DATA_DIR = tempfile.mkdtemp(prefix="ir2net-mock-tfds-")

FAST = ["--latency-runs", "0", "--random-samples", "8"]
MEAN, STD = np.array(data.IMAGENET_MEAN, np.float32), np.array(data.IMAGENET_STD, np.float32)


def prepared(uint8_images):
    """uint8 RGB → the zoo models' input, in NumPy (0–1 scale, ImageNet mean/std)."""
    return ((uint8_images.astype(np.float32) / np.float32(255.0)) - MEAN) / STD


def digits_model(model_dir, input_size=None):
    """The digits run's Keras model (logits), built here from its config."""
    config = json.load(open(os.path.join(model_dir, artifacts.CONFIG)))
    size = input_size or config["input_shape"][0]
    model = zoo.build(config["model"], input_shape=(size, size, 3), num_classes=config["num_classes"],
                      variant=config["variant"], pad_values=config["pad_values"], classifier_activation=None)
    model.load_weights(os.path.join(model_dir, artifacts.BEST_WEIGHTS))
    return model


def correct(outputs, labels):
    return int(np.sum(np.argmax(outputs, -1) == labels))


def lce_outputs(tflite_path, images):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    with open(tflite_path, "rb") as f:
        return Interpreter(f.read()).predict(images)


def export(capsys, *argv):
    code = export_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 0, err + out
    return out


def write_image_folder(root, images, labels, per_class):
    """root/train/<class>/*.png (one image a class) and root/validation/<class>/*.png (``per_class`` a class)."""
    counts = {}
    for index, (image, label) in enumerate(zip(images, labels)):
        if counts.get(label, 0) > per_class:
            continue
        split = "train" if label not in counts else "validation"
        counts[label] = counts.get(label, 0) + 1
        folder = os.path.join(root, split, f"class{label}")
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{index:04d}.png"), tf.io.encode_png(image))


def read_image_folder(split_dir):
    """Images and labels of one split, read with PIL; classes in sorted order."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(sorted(os.listdir(split_dir))):
        for file in sorted(os.listdir(os.path.join(split_dir, name))):
            images.append(np.asarray(Image.open(os.path.join(split_dir, name, file)).convert("RGB")))
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def digits_run(digits_run_16):
    return digits_run_16


@pytest.fixture(scope="module")
def exported(digits_run, tmp_path_factory):
    """One `python -m export --model-dir RUN --evaluate FOLDER` (its default
    held-out check included): (printed summary, report, .tflite path, folder)."""
    folder = tmp_path_factory.mktemp("exported")
    _, x_test, _, y_test = data.digits_arrays(16)
    write_image_folder(str(folder / "digit_folder"), x_test, y_test, per_class=5)
    output = folder / "digits.tflite"
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = export_main([str(a) for a in ("--model-dir", digits_run, "-o", output, "--evaluate",
                                             folder / "digit_folder", "--batch-size", 16, *FAST)])
    assert code == 0, printed.getvalue()
    report = json.loads((folder / "digits.json").read_text())
    return printed.getvalue(), report, str(output), folder / "digit_folder"


@pytest.mark.slow
def test_export_verifies_on_all_held_out_digits_by_default(digits_run, exported):
    out, report, tflite, _ = exported
    figures = report["parity"]["held-out"]
    _, x_test, _, y_test = data.digits_arrays(16)
    images = prepared(x_test)
    keras_correct = correct(digits_model(digits_run).predict(images, verbose=0), y_test)
    lce_correct = correct(lce_outputs(tflite, images), y_test)
    assert figures["samples"] == len(y_test) == 360 and figures["dataset"] == "digits"
    assert figures["keras_accuracy"] == keras_correct / 360 and figures["lce_accuracy"] == lce_correct / 360
    assert figures["top1_agreement"] >= deploy.DEFAULT_MIN_AGREEMENT
    assert keras_correct > 72  # chance is 36 of 360
    line = f"top-1 accuracy Keras {100 * keras_correct / 360:.2f} % / .tflite {100 * lce_correct / 360:.2f} %"
    assert "held-out digits: 360 inputs" in out and line in out, out
    assert set(report["parity"]) == {"held-out", "random"}


@pytest.mark.slow
def test_evaluate_on_an_image_folder(digits_run, exported):
    out, report, tflite, folder = exported
    images, labels = read_image_folder(str(folder / "validation"))
    assert len(labels) == 50
    keras_correct = correct(digits_model(digits_run).predict(prepared(images), verbose=0), labels)
    lce_correct = correct(lce_outputs(tflite, prepared(images)), labels)
    result = report["evaluation"]
    assert result["examples"] == 50 and result["batch_size"] == 16
    assert (result["keras"]["correct"], result["tflite"]["correct"]) == (keras_correct, lce_correct)
    assert keras_correct > 10  # chance is 5 of 50: the labels and images line up
    assert f"Keras top-1 {2 * keras_correct:.2f} %" in out and f".tflite top-1 {2 * lce_correct:.2f} %" in out


def test_batched_interpreter_gives_the_batch_one_outputs(exported):
    with open(exported[2], "rb") as f:
        flatbuffer = f.read()
    _, x_test, _, _ = data.digits_arrays(16)
    images = prepared(x_test[:37])
    alone = deploy.run_flatbuffer(flatbuffer, images)
    runner = deploy.FlatbufferRunner(flatbuffer, batch_size=16, num_threads=2)
    batched = runner(images)  # 16 + 16 + a padded 5
    assert runner.batch_size == 16 and batched.shape == alone.shape == (37, 10)
    np.testing.assert_allclose(batched, alone, atol=1e-5)


@pytest.mark.slow
def test_evaluate_on_mock_cifar10(digits_run, tmp_path, capsys):
    import tensorflow_datasets as tfds

    weights = os.path.join(digits_run, artifacts.BEST_WEIGHTS)
    output = tmp_path / "cifar.tflite"
    with tfds.testing.mock_data(num_examples=40):
        out = export(capsys, "--model", "IR2ResNet20", "--weights", weights, "-o", output, "--evaluate", "cifar10",
                     "--data-dir", MOCK_DATA_DIR, "--batch-size", 16, "--min-agreement", 0, *FAST)
        # The same mocked test split, decoded here.
        test = tfds.load("cifar10", split="test", as_supervised=True, data_dir=MOCK_DATA_DIR,
                         decoders={"image": tfds.decode.SkipDecoding()})
        pairs = [(tf.io.decode_png(image, channels=3).numpy(), int(label)) for image, label in test]
    images, labels = prepared(np.stack([p[0] for p in pairs])), np.array([p[1] for p in pairs])

    result = json.loads((tmp_path / "cifar.json").read_text())["evaluation"]
    keras_correct = correct(digits_model(digits_run, input_size=32).predict(images, verbose=0), labels)
    lce_correct = correct(lce_outputs(output, images), labels)
    keras_top1_by_hand = keras_correct / len(labels)
    assert result["dataset"] == "cifar10" and result["examples"] == len(labels) == 40
    assert (result["keras"]["correct"], result["tflite"]["correct"]) == (keras_correct, lce_correct)
    assert result["keras"]["top1"] == keras_top1_by_hand
    assert f"Keras top-1 {100 * keras_top1_by_hand:.2f} %" in out and ".tflite top-1" in out


@pytest.mark.parametrize("classes", [100, 3])  # more, or fewer (a 3-class folder): its labels mean other classes
def test_evaluate_refuses_a_dataset_with_other_classes(digits_run, classes):
    model = digits_model(digits_run)
    dataset = data.load("digits", image_size=16)
    dataset.num_classes = classes
    with pytest.raises(ValueError, match=f"{classes} classes; the model outputs 10"):
        evaluation.measure_accuracy(model, dataset, progress=False)


# --------------------------------------------- python -m train --mode evaluate


@pytest.fixture(scope="module")
def imported_b(tmp_path_factory):
    """IR2ResNet18-B weights imported from a PyTorch checkpoint written here."""
    pytest.importorskip("torch", reason="PyTorch is optional: pip install -e '.[torch]'")
    from ir2net_tf.interop import pytorch as pytorch_import
    from test_pytorch_import import ReferenceIR2ResNet, randomize, save_reference_checkpoint

    folder = tmp_path_factory.mktemp("imported")
    checkpoint, weights = folder / "ir2resnet18_b.pth.tar", folder / "ir2resnet18_b.weights.h5"
    save_reference_checkpoint(randomize(ReferenceIR2ResNet("B"), True, seed=7), checkpoint)
    model = pytorch_import.import_checkpoint(checkpoint, model="IR2ResNet18", variant="B", input_size=64,
                                             output=weights, classifier_activation=None)
    return model, str(weights)


def mock_imagenet(images, labels):
    """tfds.testing.mock_data for imagenet2012 holding exactly these examples."""
    import tensorflow_datasets as tfds

    def as_dataset(self, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": np.asarray(labels, np.int64)})

    return tfds.testing.mock_data(num_examples=len(images), as_dataset_fn=as_dataset)


def train_cli(capsys, *argv):
    """python -m train's main, in this process (so that the mocked data is seen)."""
    from absl import flags

    from ir2net_tf.runs import cli

    flags.FLAGS(["train", *argv])
    try:
        cli.main(["train"])
    finally:
        flags.FLAGS.unparse_flags()
    return capsys.readouterr()


@pytest.mark.slow
def test_mode_evaluate_any_weights_gives_the_library_top1(imported_b, tmp_path, capsys):
    model, weights = imported_b
    images = np.random.default_rng(3).integers(0, 256, (12, 80, 72, 3), dtype=np.uint8)
    labels = np.zeros(12, np.int64)
    with mock_imagenet(images, labels):
        # The library path: the imported model on the dataset as ir2net_tf.data prepares it.
        dataset = data.load("imagenet2012", image_size=64, data_dir=MOCK_DATA_DIR)
        predicted = np.concatenate([model.predict_on_batch(x).argmax(-1) for x, _ in dataset.evaluation(5)])
    # Labels that make the library's top-1 exactly 7 of 12: any other model
    # (another padding, variant or weights) would predict other classes.
    labels[:7] = predicted[:7]
    labels[7:] = (predicted[7:] + 1) % 1000
    args = ["--mode=evaluate", "--model=IR2ResNet18", "--variant=B", "--padding=pytorch", f"--weights={weights}",
            "--dataset=imagenet2012", f"--data_dir={MOCK_DATA_DIR}", "--image_size=64", "--verbose=0"]
    with mock_imagenet(images, labels):
        library = evaluation.measure_accuracy(model, data.load("imagenet2012", image_size=64, data_dir=MOCK_DATA_DIR),
                                      progress=False)
        out, _ = train_cli(capsys, *args)

    result = json.loads(out.strip().splitlines()[-1])
    assert library["keras"]["correct"] == 7
    assert result["top1"] == library["keras"]["top1"] == 7 / 12 and result["examples"] == 12
    assert "top-1 58.33 %" in out


def test_mode_evaluate_names_the_layer_that_does_not_fit(imported_b, capsys):
    _, weights = imported_b
    images = np.zeros((2, 64, 64, 3), np.uint8)
    with mock_imagenet(images, [0, 1]), pytest.raises(SystemExit) as exit_info:
        train_cli(capsys, "--mode=evaluate", "--model=IR2ResNet18", "--variant=C", f"--weights={weights}",
                  "--dataset=imagenet2012", f"--data_dir={MOCK_DATA_DIR}", "--image_size=64", "--verbose=0")
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    # The message names the layers that differ (here the fusion head's).
    assert "does not fit model 'ir2_resnet18_c'" in err and "recovery_fusion_cheap_conv" in err, err


@pytest.mark.slow
def test_mode_evaluate_of_a_run_on_its_held_out_split(digits_run, capsys):
    out, _ = train_cli(capsys, "--mode=evaluate", f"--model_dir={digits_run}", "--verbose=0")
    result = json.loads(out.strip().splitlines()[-1])
    _, x_test, _, y_test = data.digits_arrays(16)
    by_hand = correct(digits_model(digits_run).predict(prepared(x_test), verbose=0), y_test) / len(y_test)
    assert result["examples"] == 360 and result["top1"] == by_hand


# ------------------------------------------------ the catalog's measured accuracy


@pytest.mark.slow
def test_zoo_list_shows_measured_tflite_accuracy_beside_the_paper(digits_run, exported, monkeypatch, capsys):
    from ir2net_tf.catalog import cli as zoo_cli

    # Only the measured model's rows: the others are built by test_zoo_cli.
    monkeypatch.setattr(zoo, "model_variants", lambda: [("IR2ResNet20", "paper"), ("IR2ResNet20", "A")])
    weights = os.path.join(digits_run, artifacts.BEST_WEIGHTS)
    code = zoo_cli.main(["list", "--json", "--weights", f"IR2ResNet20={weights}", "--dataset", "digits",
                         "--image_size", "16"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    measured, other = rows
    # The same weights, the same held-out digits: what the export measured on its file.
    figures = exported[1]["parity"]["held-out"]
    assert measured["measured_top1"] == pytest.approx(100 * figures["lce_accuracy"])
    assert measured["measured_keras_top1"] == pytest.approx(100 * figures["keras_accuracy"])
    assert measured["paper_top1"] is not None and measured["measured_examples"] == 360
    assert "measured_top1" not in other

    code = zoo_cli.main(["list", "--weights", f"IR2ResNet20={weights}"])
    assert code == 2 and "--weights needs --dataset" in capsys.readouterr().err


# ------------------------------------------ docs/deployment.md, command by command

GUIDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "deployment.md")
# What the smallest form adds to a guide command: small inputs, no timing.
SMALLEST = {
    "export": ["--latency-runs", "0", "--random-samples", "8"],
    "export IR2ResNet18": ["--input-size", "96", "--min-agreement", str(deploy.RANDOM_WEIGHTS_MIN_AGREEMENT)],
    "train IR2ResNet18": ["--image_size=64"],
    "import-pytorch": ["--input-size", "64"],
}


def guide_blocks(language):
    """The guide's code blocks in ``language``, as lists of lines."""
    blocks, current = [], None
    for line in open(GUIDE):
        if line.startswith("```"):
            if current is not None:
                blocks.append(current)
                current = None
            elif line.strip() == f"```{language}":
                current = []
            continue
        if current is not None:
            current.append(line.rstrip("\n"))
    return blocks


@pytest.mark.slow
def test_every_host_command_of_the_deployment_guide_runs(digits_run, tmp_path, monkeypatch, capsys):
    """Each `python -m` command of docs/deployment.md, in its smallest form:
    the demo run is the digits run, ImageNet is tfds's mock, the checkpoint
    is a random one written here; the device commands are LCE's own."""
    pytest.importorskip("torch", reason="PyTorch is optional: pip install -e '.[torch]'")
    import shlex
    import shutil

    from ir2net_tf.catalog import cli as zoo_cli
    from test_pytorch_import import ReferenceIR2ResNet, randomize, save_reference_checkpoint

    commands = [line for block in guide_blocks("sh") for line in block if line.startswith("python -m ")]
    # The order a user follows: import the checkpoint before using its weights.
    commands.sort(key=lambda c: "import-pytorch" not in c)
    assert len(commands) >= 7, commands
    monkeypatch.chdir(tmp_path)
    shutil.copytree(digits_run, "runs/demo")
    save_reference_checkpoint(randomize(ReferenceIR2ResNet("B"), True, seed=11), "checkpoint.pth.tar")
    monkeypatch.setattr(zoo, "model_variants", lambda: [("IR2ResNet20", "paper")])
    images = np.random.default_rng(5).integers(0, 256, (6, 72, 80, 3), dtype=np.uint8)
    ran = []
    with mock_imagenet(images, np.arange(6)):
        for command in commands:
            argv = shlex.split(command.replace("~/tensorflow_datasets", MOCK_DATA_DIR))[2:]
            tool, extra = argv[0], []
            if tool == "export":
                extra = SMALLEST["export"] + (SMALLEST["export IR2ResNet18"] if "IR2ResNet18" in argv else [])
                code = export_main(argv[1:] + extra)
            elif tool == "train":
                train_cli(capsys, *argv[1:], *(SMALLEST["train IR2ResNet18"] if "IR2ResNet18" in argv else []),
                          "--verbose=0")
                code = 0  # errors end in SystemExit
            elif argv[1] == "import-pytorch":
                code = zoo_cli.main(argv[1:] + SMALLEST["import-pytorch"])
            else:
                code = zoo_cli.main(argv[1:])
            out, err = capsys.readouterr()
            assert code == 0 and "Traceback" not in out + err, f"{command}\n{err}\n{out}"
            ran.append(command)
    assert any("--evaluate digits" in c for c in ran) and any("--mode evaluate --model IR2ResNet18" in c for c in ran)

    # The host Python example, on the file the first export wrote.
    (python_example,) = guide_blocks("python")
    shutil.copy("runs/demo/model.tflite", "model.tflite")
    exec("\n".join(python_example), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("[(1, 16, 16, 3)]") and len(printed[1].split()) == 8
