"""python -m zoo off the happy path (issues 15 and 20): show-restriction's
bad --images arrays, import-pytorch's empty or malformed checkpoints,
benchmark's --cache_dir that is a file or holds an empty .tflite: each named,
exit 2, nothing written.

The command is called in-process (its ``main``)."""

import os
import re

import numpy as np
import pytest


from tests_support import zoo_cli


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 8, 8, 4), np.uint8), "4 channels"),
    (np.zeros((0, 8, 8, 3), np.uint8), "holds no images"),
    (np.full((4, 8, 8, 3), 200.0, np.float32), "0–255"),
    ({"x": np.zeros((4, 8, 8, 3), np.uint8), "y": np.zeros(3, np.int64)}, "4 images but 3 labels"),
    (b"corrupt", "cannot be read"),
])
def test_bad_image_arrays_are_named(tmp_path, capsys, array, message):
    suffix = ".npz" if isinstance(array, (dict, bytes)) else ".npy"
    path = str(tmp_path / f"images{suffix}")
    if isinstance(array, dict):
        np.savez(path, **array)
    elif isinstance(array, bytes):
        open(path, "wb").write(array)
    else:
        np.save(path, array)
    code, _, err = zoo_cli(capsys, "show-restriction", "--model", "IR2ResNet20", "--input_size", "8",
                           "--images", path, "--output_dir", str(tmp_path / "out"))
    assert code == 2 and path in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_empty_pytorch_checkpoint_is_named(tmp_path, capsys):
    path = tmp_path / "empty.pth.tar"
    path.write_bytes(b"")
    code, _, err = zoo_cli(capsys, "import-pytorch", str(path), "-o", str(tmp_path / "out.weights.h5"))
    assert code != 0 and str(path) in err
    assert sorted(os.listdir(tmp_path)) == ["empty.pth.tar"]


def test_benchmark_cache_dir_that_is_a_file_is_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").write_text("a file")
    code, _, err = zoo_cli(capsys, "benchmark", "--models", "IR2ResNet20-A", "--cache_dir", "cache",
                           "--output_dir", "out")
    assert code == 2 and "--cache_dir" in err and "is a file" in err, err
    assert sorted(os.listdir(tmp_path)) == ["cache"]


def test_benchmark_names_an_empty_cached_tflite(tmp_path):
    from ir2net_tf.catalog import benchmark

    entry = next(e for e in benchmark.entries() if e.name == "IR2ResNet20-A")
    cached = tmp_path / "IR2ResNet20-A_32.tflite"
    cached.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{cached} \\(--cache_dir\\) is empty; delete it"):
        benchmark._flatbuffer(entry, str(tmp_path), 32)


def _torch_state(**tensors):
    """A state dict of the reference ResNet-18 layout (4 blocks per stage) with ``tensors``."""
    torch = pytest.importorskip("torch")
    state = {f"module.layer{s}.{b}.conv1.weight": torch.zeros(2, 2, 3, 3) for s in range(1, 5) for b in range(4)}
    state["module.fc.weight"] = torch.zeros(10, 4)
    state["module.fusion.weight"] = torch.zeros(4, 4, 1, 1)
    state.update({f"module.{k}": v for k, v in tensors.items()})
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize("case, key, message", [
    ("cheap without primary", "fusion.primary_conv.0.weight", "has no 'fusion.primary_conv.0.weight'"),
    ("0-d fc.weight", "fc.weight", r"'fc.weight' has shape \(\)"),
    ("zero-size fusion weight", "fusion.cheap_operation.0.weight", "is empty"),
    ("NaN", "layer1.0.conv1.weight", "NaN or infinite"),
    ("inf", "fc.weight", "NaN or infinite"),
])
def test_malformed_pytorch_state_dicts_are_named(tmp_path, capsys, case, key, message):
    torch = pytest.importorskip("torch")
    nan = torch.zeros(2, 2, 3, 3)
    nan[0, 0, 0, 0] = float("nan")
    tensors = {
        "cheap without primary": {"fusion.weight": None, "fusion.cheap_operation.0.weight": torch.zeros(4, 1, 3, 3)},
        "0-d fc.weight": {"fc.weight": torch.tensor(1.0)},
        "zero-size fusion weight": {"fusion.weight": None, "fusion.cheap_operation.0.weight": torch.zeros(0, 1, 3, 3),
                                    "fusion.primary_conv.0.weight": torch.zeros(4, 4, 1, 1)},
        "NaN": {"layer1.0.conv1.weight": nan},
        "inf": {"fc.weight": torch.full((10, 4), float("inf"))},
    }[case]
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": _torch_state(**tensors)}, path)
    code, _, err = zoo_cli(capsys, "import-pytorch", str(path), "-o", str(tmp_path / "out.weights.h5"))
    assert code == 2 and key in err and re.search(message, err), err
    assert os.listdir(tmp_path) == ["checkpoint.pth.tar"]
