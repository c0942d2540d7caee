"""IR² on every larq-zoo network through the zoo's model descriptions: built,
trained one IR² step and exported with the census rule, ImageNet weights
through larq-zoo's download, and the commands (train, export, list)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import deploy, zoo
from ir2net_tf.catalog.cli import main as zoo_main
from ir2net_tf.models import larq_zoo_backbones, larq_zoo_factories
from ir2net_tf.training.trainer import IR2Trainer

# The export is checked here for one network of each family (its layer
# types): the others differ only in depth and width, and the by-hand sweep
# (`python -m zoo verify`, docs/verification.md) exports all 14 with every head.
EXPORTED = {"IR2QuickNetSmall", "IR2BiRealNet", "IR2BinaryDenseNet28", "IR2MeliusNet22", "IR2RealToBinaryNet",
            "IR2BinaryResNetE18", "IR2BinaryAlexNet", "IR2XNORNet", "IR2DoReFaNet"}


def _smallest(name):
    spec = zoo.get_spec(name)
    return max(spec.min_size, spec.stride)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.LARQ_ZOO_MODELS)
def test_every_larq_zoo_network_takes_an_ir2_step_and_exports(name):
    """Head B at the network's smallest input: one IR² training step, then
    (``EXPORTED``) the export's census: every binary convolution an LceBconv2d,
    and a note exactly where the spec declares the export not fully binary."""
    size = _smallest(name)
    tf.keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=(size, size, 3), variant="B", num_classes=4, classifier_activation=None)
    assert model.get_layer(zoo.FEATURES_LAYER).output.shape[1] > 1
    trainer = IR2Trainer(model, restriction_lambda=0.15)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.01), run_eagerly=True)
    before = [w.numpy().copy() for w in model.trainable_weights[-3:]]
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
    logs = trainer.train_on_batch(x, np.array([0, 1]), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.trainable_weights[-3:], before))
    if name not in EXPORTED:
        return
    counts = deploy.keras_conv_counts(model)
    census = deploy.check_census(deploy.op_census(deploy.convert(model)), counts)
    assert census["ok"], census["problems"]
    assert census["lce_bconv2d"] == counts["binary_convs"]
    # A network whose export is not fully binary says so in its spec, and
    # the census notes it (DoReFaNet: 2-bit activations, no LceBconv2d).
    assert bool(census["notes"]) == bool(zoo.get_spec(name).deploy_note), census["notes"]


@pytest.mark.slow
@pytest.mark.parametrize("network", sorted(larq_zoo_factories.FACTORIES))
def test_lambda_free_networks_equal_larq_zoos_own_and_load_back(network, tmp_path):
    """MeliusNet22 and RealToBinaryNet are built without larq-zoo's Lambda
    layers: the same layer names and weight shapes (larq-zoo's ImageNet files
    load by their order), the same outputs with the same weights, and an IR²
    model on them saved as .keras loads back without custom objects."""
    import importlib

    size = _smallest(f"IR2{network}")
    theirs = getattr(importlib.import_module("larq_zoo.literature"), network)(
        input_shape=(size, size, 3), weights=None, include_top=False)
    ours = larq_zoo_factories.build(network, (size, size, 3))
    assert [type(layer).__name__ for layer in theirs.layers].count("Lambda") > 0
    assert "Lambda" not in {type(layer).__name__ for layer in ours.layers}
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in theirs.layers[1:]]
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    rng = np.random.default_rng(1)
    ours.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in ours.weights])
    theirs.set_weights(ours.get_weights())
    x = rng.normal(size=(2, size, size, 3)).astype(np.float32)
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())

    model = zoo.build(f"IR2{network}", input_shape=(size, size, 3), num_classes=4)
    model.save(tmp_path / "model.keras")
    reloaded = tf.keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(reloaded(x).numpy(), model(x).numpy())


@pytest.fixture(scope="module")
def served_weights(tmp_path_factory):
    """larq-zoo's QuickNetSmall 'notop' file name, served from a local file of
    random weights (what its download would cache)."""
    source = larq_zoo_backbones.LarqZooBackbone(larq_zoo_backbones.SPECS["QuickNetSmall"].backbone.network)
    tf.keras.utils.set_random_seed(3)
    original = source.larq_zoo_model((64, 64, 3))
    for weight in original.weights:  # not the initializers' values: any weight out of place shows
        weight.assign(tf.random.normal(weight.shape, seed=None))
    path = tmp_path_factory.mktemp("larq_cache") / "quicknet_small_weights_notop.h5"
    original.save_weights(str(path))
    return path, original


@pytest.mark.slow
def test_imagenet_weights_come_from_larq_zoos_download(served_weights, monkeypatch):
    path, original = served_weights
    from larq_zoo.core import utils

    asked = []

    def download(model, version, file, file_hash, cache_dir=None):
        asked.append(file)
        return str(path) if file == path.name else pytest.fail(f"asked for {file}")

    monkeypatch.setattr(utils, "download_pretrained_model", download)
    model = zoo.IR2QuickNetSmall(weights="imagenet", input_shape=(64, 64, 3), variant="B", num_classes=5)
    assert asked == [path.name]
    backbone = model.get_layer(original.name)
    assert len(backbone.weights) == len(original.weights)
    for ours, theirs in zip(backbone.weights, original.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # The new parts start from their initializers, not from the file.
    assert model.get_layer("predictions").kernel.shape == (512, 5)


def test_offline_imagenet_weights_say_where_the_file_goes(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://github.com/...: None -- no network")

    monkeypatch.setattr(tf.keras.utils, "get_file", offline)
    with pytest.raises(ValueError) as error:
        zoo.IR2QuickNetSmall(weights="imagenet", input_shape=(64, 64, 3))
    message = str(error.value)
    assert "\n" not in message
    expected = larq_zoo_backbones.larq_zoo_cache_path("quicknet", "quicknet_small_weights_notop.h5")
    assert expected in message and "larq/models/quicknet" in expected


def test_imagenet_weights_need_three_channels_and_our_models_have_none():
    with pytest.raises(ValueError, match=r"weights='imagenet' takes \(height, width, 3\)"):
        zoo.IR2QuickNet(weights="imagenet", include_top=False, input_shape=(None, None, 1))
    with pytest.raises(ValueError, match="no downloadable pretrained weights"):
        zoo.IR2ResNet18(weights="imagenet")
    with pytest.raises(ValueError, match=r"pad_values must be one of \(1.0,\) \(IR2QuickNet's binary convolutions "
                                         r"are larq-zoo's own\)"):
        zoo.IR2QuickNet(pad_values=0.0)


def test_the_catalog_lists_them(capsys):
    assert zoo_main(["list", "--json", "IR2QuickNet"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["variant"] for r in rows} == {"A", "B", "C", "D"}
    from ir2net_tf.catalog import benchmark

    names = [entry.name for entry in benchmark.choose(["*QuickNet*"])]
    for family in ("QuickNet", "QuickNetSmall", "QuickNetLarge"):
        assert f"larq-zoo {family}" in names
        assert all(f"IR2{family}-{v}" in names for v in "ABCD")
