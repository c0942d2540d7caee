"""Importing the authors' PyTorch checkpoints.

A PyTorch re-implementation of the reference ImageNet IR²Net ResNet-18
(docs/architectures.md, and the reference's checkpoint layout), with random weights and random
batch-norm statistics, is saved as the reference saves it (``state_dict``
under ``nn.DataParallel``: keys start with ``module.``), imported into our
Keras model built with ``padding="pytorch"``, and must give PyTorch's logits
in evaluation mode on the same inputs, for variants A-D, step 1 (real
weights) and step 2 (binary weights). The imported model must also convert
with LCE (every binary convolution an ``LceBconv2d``) and give the same logits.

Binarized activations that are within float rounding of 0 can binarize to
different signs in the two frameworks (their float parts sum in different
orders), which changes the logits of that sample a lot. The tests count such
sign flips directly (the inputs of every binary convolution) and allow a
small fraction of flipped activations; samples without a flip must agree to
float precision.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf.interop import pytorch as pytorch_import
from ir2net_tf.interop.pytorch import CheckpointError

torch = pytest.importorskip("torch", reason="PyTorch is optional: pip install -e '.[torch]'")
nn = torch.nn
F = torch.nn.functional

SIZE = 64  # small inputs keep the test fast; every stride-2 layer still pads
# LCE 0.16 zero-pads wrongly when a binary conv's map is smaller than its 3×3
# kernel (ir2net_tf.deploy.zero_padding_hazards): at 64 the last stage is 2×2,
# at 96 it is 3×3.
EXPORT_SIZE = 96
SAMPLES = 16
HEADS = {"A": None, "B": (2, "depthwise"), "C": (4, 8), "D": (20, "depthwise")}


# ------------------------------------------------- the PyTorch reference model


class BinaryActivation(nn.Module):
    def forward(self, x):
        return torch.sign(x)  # evaluation only: the Bi-Real gradient is irrelevant


class HardBinaryConv(nn.Module):
    """The reference's binary conv: weights stored flattened, sign(W), no scale."""

    def __init__(self, in_chn, out_chn, stride=1, binary_weights=True):
        super().__init__()
        self.stride = stride
        self.shape = (out_chn, in_chn, 3, 3)
        self.binary_weights = binary_weights
        self.weights = nn.Parameter(torch.rand((out_chn * in_chn * 9, 1)) * 0.001)

    def forward(self, x):
        w = self.weights.view(self.shape)
        if self.binary_weights:
            w = torch.sign(w)
        return F.conv2d(x, w, stride=self.stride, padding=1)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride, downsample, binary_weights):
        super().__init__()
        self.binary_activation = BinaryActivation()
        self.binary_conv = HardBinaryConv(inplanes, planes, stride, binary_weights)
        self.bn1 = nn.BatchNorm2d(planes)
        self.prelu = nn.PReLU(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.binary_conv(self.binary_activation(x)))
        return self.prelu(out + residual)


class GhostFusion(nn.Module):
    """CIRec: primary 1×1 conv and cheap grouped 3×3 conv, each → BN → PReLU."""

    def __init__(self, inp, oup, ratio, groups):
        super().__init__()
        self.oup = oup
        init = math.ceil(oup / ratio)
        new = init * (ratio - 1)
        groups = init if groups == "depthwise" else groups
        self.primary_conv = nn.Sequential(nn.Conv2d(inp, init, 1, bias=False), nn.BatchNorm2d(init), nn.PReLU(init))
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init, new, 3, 1, 1, groups=groups, bias=False), nn.BatchNorm2d(new), nn.PReLU(new)
        )

    def forward(self, x):
        x1 = self.primary_conv(x)
        return torch.cat([x1, self.cheap_operation(x1)], dim=1)[:, : self.oup]


class ReferenceIR2ResNet(nn.Module):
    def __init__(self, variant, depths=(4, 4, 4, 4), num_classes=1000, binary_weights=True):
        super().__init__()
        self.variant = variant
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for stage, (blocks, planes) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
            layers = []
            for block in range(blocks):
                stride = 2 if stage > 1 and block == 0 else 1
                downsample = None
                if stride != 1 or inplanes != planes:
                    downsample = nn.Sequential(
                        nn.AvgPool2d(2, stride), nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
                    )
                layers.append(BasicBlock(inplanes, planes, stride, downsample, binary_weights))
                inplanes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
        if variant == "A":
            self.fusion = nn.Conv2d(1024, 512, 1, bias=False)
            self.fbn = nn.BatchNorm2d(512)
            self.fprelu = nn.PReLU(512)
        else:
            self.fusion = GhostFusion(1024, 512, *HEADS[variant])
        self.bn2 = nn.BatchNorm1d(512)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        f0 = self.prelu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        final = self.layer4(f3)
        size = final.shape[-1]
        x = torch.cat([F.adaptive_avg_pool2d(f, size) for f in (f0, f1, f2, f3)] + [final], dim=1)
        x = self.fusion(x)
        if self.variant == "A":
            x = self.fprelu(self.fbn(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.bn2(x))


def randomize(model, binary_weights, seed):
    """Random weights, and random batch-norm statistics scaled to the layer
    before, so that activations stay of order 1 and parity is meaningful."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    previous_fan_in = 1.0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, HardBinaryConv):
                weights = randn(*module.weights.shape) / (1.0 if binary_weights else 10.0)
                # torch.randn does return exact zeros (about 1 in 5 million):
                # the reference's sign(0) is 0, larq's and LCE's +1 (the
                # importer counts such weights; see test_zero_binary_weights).
                weights[weights == 0] = 1e-3
                module.weights.copy_(weights)
                fan_in = module.shape[1] * 9
                # sign(W) sums fan_in ±1 terms; real N(0, 0.01) weights 100x less variance.
                previous_fan_in = fan_in if binary_weights else fan_in / 100.0
            elif isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(randn(*module.weight.shape) / math.sqrt(fan_in))
                previous_fan_in = 1.0
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                n = module.num_features
                module.weight.copy_(0.5 + rand(n))
                module.bias.copy_(0.1 * randn(n))
                module.running_mean.copy_(0.3 * randn(n) * math.sqrt(previous_fan_in))
                module.running_var.copy_((0.5 + 1.5 * rand(n)) * previous_fan_in)
                module.num_batches_tracked.fill_(1000)
                previous_fan_in = 1.0
            elif isinstance(module, nn.PReLU):
                module.weight.copy_(0.5 * rand(module.weight.shape[0]))
            elif isinstance(module, nn.Linear):
                module.weight.copy_(randn(*module.weight.shape) / math.sqrt(module.in_features))
                module.bias.copy_(0.1 * randn(module.out_features))
    return model.eval()


def save_reference_checkpoint(model, path):
    """As the reference training code saves: DataParallel keys, a state_dict
    inside a dict with training metadata."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 256, "state_dict": state, "best_top1_acc": 0.0}, path)


# --------------------------------------------------------------- comparisons


def inputs(seed=0, size=SIZE):
    return np.random.default_rng(seed).standard_normal((SAMPLES, size, size, 3)).astype(np.float32)


def reference_run(model, x):
    """Logits and the float inputs of every binary convolution (NHWC)."""
    captured = []
    hooks = [
        m.register_forward_pre_hook(lambda _, args: captured.append(args[0].permute(0, 2, 3, 1).numpy()))
        for m in model.modules()
        if isinstance(m, BinaryActivation)
    ]
    with torch.no_grad():
        logits = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    for hook in hooks:
        hook.remove()
    return logits, captured


def keras_run(model, x):
    bconvs = [layer for layer in model.layers if layer.name.endswith("_bconv")]
    probe = tf.keras.Model(model.inputs, [model.output] + [layer.input for layer in bconvs])
    # One eager call: much faster here than predict(), which traces a graph first.
    outputs = [y.numpy() for y in probe(x, training=False)]
    return outputs[0], outputs[1:]


def compare(torch_model, keras_model, x):
    expected, torch_acts = reference_run(torch_model, x)
    actual, keras_acts = keras_run(keras_model, x)
    assert len(torch_acts) == len(keras_acts) == 16
    # A flip: one framework binarizes an activation to +1, the other to -1.
    flips = [np.sum((t >= 0) != (k >= 0)) for t, k in zip(torch_acts, keras_acts)]
    flipped = np.zeros(len(x), dtype=bool)
    for t, k in zip(torch_acts, keras_acts):
        flipped |= np.any((t >= 0) != (k >= 0), axis=(1, 2, 3))
    diff = np.abs(actual - expected).max(axis=1)
    return {
        "max_abs_diff": float(diff.max()),
        "max_abs_diff_unflipped": float(diff[~flipped].max()) if (~flipped).any() else 0.0,
        "logit_scale": float(np.abs(expected).max()),
        "top1_agreement": float(np.mean(actual.argmax(1) == expected.argmax(1))),
        "flipped_activations": int(sum(flips)),
        "binarized_activations": int(sum(a.size for a in torch_acts)),
        "samples_with_flips": int(flipped.sum()),
    }


def import_variant(tmp_path, variant, binary_weights, seed, size=SIZE):
    reference = randomize(ReferenceIR2ResNet(variant, binary_weights=binary_weights), binary_weights, seed)
    path = tmp_path / f"checkpoint_{variant}_{int(binary_weights)}.pth.tar"
    save_reference_checkpoint(reference, path)
    keras_model = pytorch_import.import_checkpoint(
        path, model="IR2ResNet18", variant=variant, binary_weights=binary_weights, input_size=size,
        classifier_activation=None,
    )
    return reference, keras_model


def check_parity(result, tolerance):
    # Sign flips are rare (one activation in 10^5 or fewer) and only they may
    # make a sample differ by more than float precision.
    assert result["flipped_activations"] <= 1e-4 * result["binarized_activations"], result
    assert result["samples_with_flips"] <= SAMPLES // 4, result
    assert result["max_abs_diff_unflipped"] <= tolerance * max(1.0, result["logit_scale"]), result
    assert result["top1_agreement"] >= 0.75, result


@pytest.mark.parametrize("variant", ["A", "B", "C", "D"])
def test_step2_checkpoint_gives_pytorch_logits(tmp_path, variant):
    reference, keras_model = import_variant(tmp_path, variant, True, seed=ord(variant))
    result = compare(reference, keras_model, inputs())
    print(f"variant {variant} step 2: {result}")
    check_parity(result, 1e-5)


def test_step1_checkpoint_gives_pytorch_logits(tmp_path):
    # Real weights: every sum is a float sum, still equal to float precision.
    reference, keras_model = import_variant(tmp_path, "C", False, seed=1)
    result = compare(reference, keras_model, inputs(1))
    print(f"variant C step 1: {result}")
    check_parity(result, 1e-5)


@pytest.mark.slow
def test_same_padding_would_not_match(tmp_path):
    """The padding option is needed: the same weights in the default "same"
    model give other logits (so the parity above tests the padding)."""
    reference, keras_model = import_variant(tmp_path, "B", True, seed=7)
    path = tmp_path / "b.h5"  # the legacy HDF5 format loads into either padding
    pytorch_import.save_weights_atomic(keras_model, path)
    from ir2net_tf import zoo

    same = zoo.IR2ResNet18(input_shape=(SIZE, SIZE, 3), variant="B", classifier_activation=None)
    same.load_weights(str(path))  # the same variables: loads into either padding
    for a, b in zip(same.get_weights(), keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = inputs(2)
    expected, _ = reference_run(reference, x)
    assert np.abs(keras_model(x).numpy() - expected).max() < 1e-2 * np.abs(expected).max()
    assert np.abs(same(x).numpy() - expected).max() > 0.1 * np.abs(expected).max()


@pytest.mark.slow
def test_imported_model_exports_to_lce_with_same_logits(tmp_path):
    from ir2net_tf import deploy

    reference, keras_model = import_variant(tmp_path, "D", True, seed=3, size=EXPORT_SIZE)
    assert not deploy.zero_padding_hazards(keras_model)
    flatbuffer = deploy.convert(keras_model)
    census = deploy.check_census(deploy.op_census(flatbuffer), deploy.keras_conv_counts(keras_model))
    print(f"op census: {census['ops']}")
    assert census["ok"], census["problems"]
    assert census["lce_bconv2d"] == 16
    x = inputs(3, EXPORT_SIZE)
    keras_logits = keras_model(x, training=False).numpy()
    lce = deploy.run_flatbuffer(flatbuffer, x)
    expected, _ = reference_run(reference, x)
    diff = np.abs(lce - keras_logits).max(axis=1)
    result = {
        "max_abs_diff": float(diff.max()),
        "median_sample_max_abs_diff": float(np.median(diff)),
        "top1_agreement": float(np.mean(lce.argmax(1) == keras_logits.argmax(1))),
        "lce_vs_pytorch_max_abs_diff": float(np.abs(lce - expected).max()),
        "logit_scale": float(np.abs(keras_logits).max()),
    }
    close = diff <= 1e-3 * max(1.0, result["logit_scale"])
    result["samples_within_1e-3"] = f"{int(close.sum())}/{len(x)}"
    print(f"LCE vs Keras: {result}")
    assert result["top1_agreement"] >= 0.9, result
    # LCE folds batch norm into the binary convolution's output transform: a
    # few near-zero activations may flip (see the module docstring).
    assert close.mean() >= 0.75, result


# ------------------------------------------------------------------- failures


def _state(variant="B"):
    return {k: v.numpy() for k, v in ReferenceIR2ResNet(variant).state_dict().items()}


def test_missing_and_left_over_keys_are_named(tmp_path):
    state = _state("B")
    model = pytorch_import.build_for_checkpoint(state, input_size=SIZE)
    missing = dict(state)
    del missing["layer3.1.bn1.running_var"]
    with pytest.raises(CheckpointError, match=r"stage3_block2_bn.*layer3\.1\.bn1\.running_var"):
        pytorch_import.assign_state_dict(model, missing)
    extra = dict(state, **{"layer4.1.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match=r"layer4\.1\.extra\.weight"):
        pytorch_import.assign_state_dict(model, extra)
    wrong = dict(state, **{"layer2.0.downsample.1.weight": np.zeros((128, 32, 1, 1), np.float32)})
    with pytest.raises(CheckpointError, match=r"stage2_block1_down_conv.*\(128, 32, 1, 1\).*\(128, 64, 1, 1\)"):
        pytorch_import.assign_state_dict(model, wrong)
    with pytest.raises(CheckpointError, match="variant B, not variant A"):
        pytorch_import.build_for_checkpoint(state, variant="A", input_size=SIZE)


def test_variant_and_depth_are_detected():
    for variant in "ABCD":
        assert pytorch_import.detect_architecture(_state(variant)) == ("IR2ResNet18", variant, 1000)
    state34 = {k: v.numpy() for k, v in ReferenceIR2ResNet("A", depths=(6, 8, 12, 6), num_classes=10).state_dict().items()}
    assert pytorch_import.detect_architecture(state34) == ("IR2ResNet34", "A", 10)


def test_missing_torch_is_explained(monkeypatch, tmp_path):
    path = tmp_path / "c.pth.tar"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match="pip install torch==2.13.0"):
        pytorch_import.load_state_dict(path)


@pytest.mark.slow
def test_command_line(tmp_path):
    reference = randomize(ReferenceIR2ResNet("C"), True, seed=5)
    checkpoint = tmp_path / "checkpoint.pth.tar"
    save_reference_checkpoint(reference, checkpoint)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "zoo", "import-pytorch", str(checkpoint), *args],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )
    output = tmp_path / "c.weights.h5"
    done = run("--model", "IR2ResNet18", "--variant", "C", "--input-size", str(SIZE), "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert output.is_file() and "padding=\"pytorch\"" in done.stdout
    failed = run("--variant", "B", "--output", str(tmp_path / "b.weights.h5"))
    assert failed.returncode == 2 and "variant C, not variant B" in failed.stderr
    assert not (tmp_path / "b.weights.h5").exists()


def test_output_path_is_checked_before_importing(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.h5"):
        pytorch_import.check_output_path(tmp_path / "weights.ckpt")
    with pytest.raises(ValueError, match="does not exist; create it first"):
        pytorch_import.check_output_path(tmp_path / "missing" / "w.weights.h5")
    with pytest.raises(ValueError, match="is a directory"):
        (tmp_path / "d.h5").mkdir()
        pytorch_import.check_output_path(tmp_path / "d.h5")
    with pytest.raises(CheckpointError, match="does not exist"):
        pytorch_import.import_checkpoint(tmp_path / "none.pth.tar", output=tmp_path / "w.weights.h5")


def test_zero_binary_weights_are_counted():
    """sign(0) is 0 in the reference and +1 in Larq/LCE: the importer reports
    how many binary weights are exactly 0 (where the outputs can differ)."""
    state = _state("A")
    # The reference initializes with torch.rand, which itself returns an exact
    # 0 now and then (about one in 2^24): clear those so only ours count.
    for key, value in state.items():
        if key.endswith("binary_conv.weights"):
            value[value == 0] = 1e-3
    state["layer2.1.binary_conv.weights"][[3, 17]] = 0.0
    model = pytorch_import.build_for_checkpoint(state, input_size=SIZE)
    counts = pytorch_import.assign_state_dict(model, state)
    assert counts["zero_binary_weights"] == 2 and counts["keys"] == len(state)
