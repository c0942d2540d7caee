"""The zoo models against the reference: parameter counts, shapes, weights, arguments."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import zoo
from ir2net_tf.models.common import FEATURES_LAYER
from tests_support import REFERENCE_PARAMS

BINARY_KERNEL_WEIGHTS = {"IR2ResNet18": 10_985_472, "IR2ResNet34": 21_086_208}
BINARY_CONVS = {"IR2ResNet18": 16, "IR2ResNet34": 32, "IR2ResNet20": 18, "IR2ResNet18CIFAR": 16, "IR2VGGSmall": 5}
# (logits, F) shapes at the default input size.
SHAPES = {
    "IR2ResNet18": (1000, (7, 7, 512)),
    "IR2ResNet34": (1000, (7, 7, 512)),
    "IR2ResNet20": (10, (8, 8, 64)),
    "IR2ResNet18CIFAR": (10, (4, 4, 512)),
    "IR2VGGSmall": (10, (4, 4, 512)),
}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def binary_convs(model):
    return [layer for layer in model.layers if isinstance(layer, lq.layers.QuantConv2D)]


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", sorted(REFERENCE_PARAMS, key=str))
def test_parameter_counts_and_shapes(name, variant, zoo_model):
    model = zoo_model(name, variant=variant)
    assert trainable_count(model) == REFERENCE_PARAMS[name, variant]
    convs = binary_convs(model)
    assert len(convs) == BINARY_CONVS[name]
    if name in BINARY_KERNEL_WEIGHTS:
        assert sum(int(np.prod(c.kernel.shape)) for c in convs) == BINARY_KERNEL_WEIGHTS[name]
    classes, feature_shape = SHAPES[name]
    assert model.output_shape == (None, classes)
    assert tuple(model.get_layer(FEATURES_LAYER).output.shape[1:]) == feature_shape


@pytest.mark.slow
def test_binary_conv_configuration_follows_spec():
    model = zoo.IR2ResNet20()
    for conv in binary_convs(model):
        config = conv.get_config()
        assert config["use_bias"] is False and config["padding"] == "same"
        assert config["pad_values"] == 0.0
        assert conv.input_quantizer.__class__.__name__ == "ApproxSign"
        assert conv.kernel_quantizer.__class__.__name__ == "SteSign"
        assert conv.kernel_constraint is None  # the reference clips no latent weight
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == 0.9
    one_padded = zoo.IR2ResNet20(pad_values=1.0)
    assert {c.pad_values for c in binary_convs(one_padded)} == {1.0}
    clipped = zoo.IR2ResNet20(weight_clip=True)
    assert all(isinstance(c.kernel_constraint, lq.constraints.WeightClip) for c in binary_convs(clipped))


def test_with_feature_map_shares_weights_and_returns_f():
    model = zoo.IR2ResNet20(classifier_activation=None)
    both = zoo.with_feature_map(model)
    x = tf.random.normal((2, 32, 32, 3), seed=3)
    logits, features = both(x, training=False)
    np.testing.assert_allclose(logits.numpy(), model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    assert features.shape == (2, 8, 8, 64)
    assert len(both.trainable_weights) == len(model.trainable_weights)
    softmax = zoo.IR2ResNet20(weights=None)
    np.testing.assert_allclose(softmax(x).numpy().sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_step_one_weights_load_into_step_two(tmp_path):
    step1 = zoo.IR2ResNet18(input_shape=(64, 64, 3), variant="C", binary_weights=False)
    for conv in binary_convs(step1):
        assert conv.kernel_quantizer is None and conv.kernel_constraint is None
        conv.kernel.assign(tf.random.normal(conv.kernel.shape, stddev=3.0))  # outside the clip
    path = str(tmp_path / "step1.weights.h5")
    step1.save_weights(path)
    step2 = zoo.IR2ResNet18(input_shape=(64, 64, 3), variant="C", weights=path)
    assert [w.name for w in step1.weights] == [w.name for w in step2.weights]
    for a, b in zip(step1.weights, step2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "name, kwargs, shape, filename",
    [
        ("IR2ResNet18", {"variant": "C", "input_shape": (64, 64, 3)}, (64, 64, 3), "model.keras"),
        ("IR2ResNet20", {}, (32, 32, 3), "model.h5"),
        ("IR2VGGSmall", {"recovery": False}, (32, 32, 3), "model.keras"),
    ],
)
@pytest.mark.slow
def test_save_load_round_trip_without_custom_objects(tmp_path, name, kwargs, shape, filename):
    model = zoo.build(name, **kwargs)
    # Non-trivial batch-norm statistics, so that a lost variable would show.
    for _ in range(3):
        model(np.random.normal(size=(4, *shape)).astype(np.float32), training=True)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    path = str(tmp_path / filename)
    model.save(path)
    restored = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(restored(x, training=False).numpy(), model(x, training=False).numpy())


def test_bare_backbone_is_bireal_net(zoo_model):
    bare = zoo_model("IR2ResNet18", recovery=False)
    names = [layer.name for layer in bare.layers]
    assert not any(n.startswith("recovery") for n in names) and "classifier_bn" not in names
    # Bi-Real Net-18 (larq-zoo) differs only in its weight quantizer and BN epsilon.
    from larq_zoo.literature import BiRealNet

    # larq-zoo's Bi-Real Net has no PReLU: ours adds 64 slopes in the stem and
    # 4 blocks x (64 + 128 + 256 + 512) in the stages; all else is equal.
    assert trainable_count(bare) == trainable_count(BiRealNet(weights=None)) + 64 + 3_840


@pytest.mark.parametrize("name, width", [("IR2ResNet18", 512), ("IRNetResNet18", 512), ("IR2ResNet20", 64),
                                         ("IRNetResNet20", 64), ("IR2ResNet18CIFAR", 512), ("IR2VGGSmall", 512),
                                         ("IRNetVGGSmall", 512)])
@pytest.mark.slow
def test_include_top_false_is_a_fully_convolutional_feature_extractor(name, width):
    """As keras.applications and larq-zoo: (None, None, 3) by default, any
    channel count without weights; a dynamic size runs at any multiple of
    the stride."""
    assert zoo.build(name, include_top=False).output_shape == (None, None, None, width)
    model = zoo.build(name, include_top=False, input_shape=(None, None, 1))
    assert model.output_shape == (None, None, None, width)
    assert zoo.build(name, include_top=False, input_shape=(None, None, 4)).output_shape == (None, None, None, width)
    stride = zoo.get_spec(name).stride
    assert model(np.zeros((1, 3 * stride, 2 * stride, 1), np.float32)).shape == (1, 3, 2, width)


@pytest.mark.slow
def test_a_dynamic_size_computes_what_the_fixed_size_model_does():
    """The taps pooled when the model runs (PoolToMatch) give the fixed-size
    model's numbers (AdaptiveAvgPool2D): same weights, same outputs."""
    tf.keras.utils.set_random_seed(0)
    fixed = zoo.IR2ResNet20(include_top=False, input_shape=(16, 16, 3), variant="B")
    dynamic = zoo.IR2ResNet20(include_top=False, input_shape=(None, None, 3), variant="B")
    assert any(type(l).__name__ == "PoolToMatch" for l in dynamic.layers)
    dynamic.set_weights(fixed.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(dynamic(x).numpy(), fixed(x).numpy(), rtol=1e-5, atol=1e-5)
    with_top = zoo.IR2ResNet20(input_shape=(None, None, 3))
    assert with_top.output_shape == (None, 10)


def test_c_head_groups_divide_any_width():
    head = zoo.get_spec("IR2ResNet18").variants["C"].head
    assert head.groups_for(128) == 8  # the paper's 512-wide F: m // 16
    assert head.groups_for(200) == 10  # an 800-wide F: 200 // 16 = 12 does not divide 200
    assert head.groups_for(3) == 1


def test_with_feature_map_twice_and_a_second_recovery_head_are_refused_or_harmless():
    model = zoo.IR2ResNet20(input_shape=(8, 8, 3))
    once = zoo.with_feature_map(model)
    assert zoo.with_feature_map(once) is once and len(once.outputs) == 2
    with pytest.raises(ValueError, match="already has a recovery head"):
        zoo.add_recovery_head(model)


def test_include_top_false_returns_fused_map():
    model = zoo.IR2ResNet18(include_top=False, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 2, 2, 512)
    assert zoo.IR2ResNet20(include_top=False, recovery=False, input_shape=(32, 32, 3)).output_shape == (None, 8, 8, 64)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("IR2ResNet18", {"variant": "E"}, r"Unknown variant 'E' for IR2ResNet18; choose one of \['A', 'B', 'C', 'D'\]"),
        ("IR2ResNet20", {"variant": "Z"}, r"choose one of \['paper', 'A', 'B', 'C', 'D'\] \(default 'paper'\)"),
        ("IR2ResNet20", {"padding": "torch"}, r"IR2ResNet20 supports padding 'same' or 'pytorch'; got 'torch'"),
        ("IR2ResNet18", {"input_shape": (224.0, 224, 3)}, r"input_shape must hold positive integers .* got 224.0"),
        ("IR2ResNet18", {"input_shape": (64, 64)}, r"input_shape must be \(height, width, channels\)"),
        ("IR2ResNet18", {"input_shape": (64, 64, None)}, "input_shape needs a channel count"),
        ("IR2ResNet20", {"num_classes": True}, "num_classes must be a positive integer; got True"),
        ("IR2ResNet20", {"num_classes": 10.0}, "num_classes must be a positive integer; got 10.0"),
        ("IR2ResNet20", {"include_top": 1}, "include_top must be True or False; got 1"),
        ("IR2ResNet20", {"binary_weights": "no"}, r"binary_weights must be one of \(True, False\)"),
        ("IR2ResNet20", {"pad_values": True}, r"pad_values must be one of \(0.0, 1.0\); got True"),
        ("IR2ResNet18", {"input_shape": (16, 16, 3)}, "multiples of 32"),
        ("IR2ResNet18", {"input_shape": (200, 200, 3)}, "multiples of 32"),
        ("IR2ResNet20", {"input_shape": (30, 30, 3)}, "multiples of 4"),
        ("IR2VGGSmall", {"input_shape": (None, None, 3)}, "fixed height and width"),
        ("IR2ResNet20", {"include_top": False, "num_classes": 5}, "num_classes is only used with include_top=True"),
        ("IR2ResNet20", {"num_classes": 0}, "positive integer"),
        ("IR2ResNet20", {"weights": "imagenet"}, "no downloadable pretrained weights"),
        ("IR2ResNet20", {"weights": "/no/such/file.h5"}, "does not exist"),
        ("IR2ResNet20", {"pad_values": 0.5}, r"pad_values must be one of \(0.0, 1.0\)"),
    ],
)
def test_bad_arguments_name_the_choices(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.build(name, **kwargs)


def test_unknown_model_and_mismatched_weights(tmp_path):
    with pytest.raises(ValueError, match="Unknown model 'ResNet50'; choose one of"):
        zoo.build("ResNet50")
    path = str(tmp_path / "vgg.weights.h5")
    zoo.IR2VGGSmall().save_weights(path)
    with pytest.raises(ValueError, match="does not fit model 'ir2_resnet20'"):
        zoo.IR2ResNet20(weights=path)


def test_variants_are_case_insensitive_everywhere():
    assert zoo.IR2ResNet18(variant="b", input_shape=(64, 64, 3)).name == "ir2_resnet18_b"
    assert zoo.get_spec("IR2ResNet20").parse_variant(None) == "paper"
    for spelling in ("", "none", "None", "paper", "Default"):
        assert zoo.get_spec("IR2VGGSmall").parse_variant(spelling) == "paper"


def test_recovery_head_on_a_bare_zoo_backbone():
    """F is marked once: the bare model's final_features layer is reused."""
    bare = zoo.build("IR2ResNet20", recovery=False)
    model = zoo.add_recovery_head(bare, head="b", activation="hardtanh", num_classes=10)
    assert [layer.name for layer in model.layers].count(zoo.FEATURES_LAYER) == 1
    assert model.output_shape == (None, 10)


def test_with_feature_map_error_names_a_function_that_exists():
    plain = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="ir2net_tf.zoo.add_recovery_head"):
        zoo.with_feature_map(plain)
    assert callable(zoo.add_recovery_head)


@pytest.mark.slow
def test_a_saved_model_loads_back_in_a_fresh_process_after_import_ir2net_tf(tmp_path):
    """README: saved models load back without custom_objects once `import
    ir2net_tf` has run, although the package defers TensorFlow's import."""
    import subprocess
    import sys

    from ir2net_tf.zoo import IR2ResNet20

    path = str(tmp_path / "model.keras")
    IR2ResNet20(input_shape=(8, 8, 3)).save(path)
    script = ("import ir2net_tf\nimport tensorflow as tf\n"
              f"print(tf.keras.models.load_model({path!r}).count_params())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 0


def test_every_model_is_a_written_out_public_builder():
    """Each registered model is a function of ``ir2net_tf.zoo`` defined in a
    source file under its own name (IDEs, help() and static analysis see it:
    none is made by globals().update), and exported in ``__all__``."""
    import ast
    import inspect

    for name, spec in zoo.MODELS.items():
        builder = getattr(zoo, name)
        assert name in zoo.__all__ and inspect.isfunction(builder) and builder.__name__ == name, name
        source = inspect.getsource(inspect.getmodule(builder))
        defined = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{name} is not written out in {inspect.getmodule(builder).__name__}"
        assert name in (builder.__doc__ or "") or spec.summary in (builder.__doc__ or ""), name
