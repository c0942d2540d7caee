"""The package as a user installs it: a wheel built from this checkout, in a
new virtual environment, used from another directory."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from tests_support import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(virtual environment, wheel): the wheel installed without its
    dependencies, which the environment borrows from the test environment
    through a .pth file (a path entry: the test environment's editable
    install of this checkout is not activated by it)."""
    root = tmp_path_factory.mktemp("package")
    # A copy of the checkout: setuptools builds in the source folder (build/,
    # *.egg-info), which must not litter the checkout.
    source = root / "source"
    everywhere = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__")

    def ignore(folder, names):
        # A user's run and export folders at the top (not ir2net_tf/runs).
        top = {".venv", "runs", "exports"} if os.path.samefile(folder, REPO) else set()
        return set(everywhere(folder, names)) | (top & set(names))

    shutil.copytree(REPO, source, ignore=ignore)
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("ir2net_tf-*.whl")
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "test-dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return env, wheel, site


@pytest.mark.slow
def test_wheel_installs_only_the_library(installed):
    _, wheel, _ = installed
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {"ir2net_tf"} <= top_level
    assert not top_level & {"train", "export", "zoo", "benchmarks", "tests"}
    assert not [n for n in top_level if not n.startswith("ir2net_tf")], top_level


@pytest.mark.slow
def test_import_and_commands_from_another_directory(installed, tmp_path):
    env, _, site = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = "import ir2net_tf; from ir2net_tf.zoo import IR2ResNet18; IR2ResNet18(variant='B'); print(ir2net_tf.__file__)"
    imported = subprocess.run([str(env / "bin" / "python"), "-c", script], cwd=elsewhere,
                              capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.strip().startswith(site)  # the installed copy, not the checkout
    assert "Unable to register" not in imported.stderr  # TensorFlow's start-up noise is filtered

    train = subprocess.run(
        [str(env / "bin" / "ir2net-train"), "--epochs=1", "--image_size=8", "--batch_size=64", "--verbose=0",
         "--restriction_lambda=0", "--model_dir=run"],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Held-out accuracy" in train.stdout
    assert (elsewhere / "run" / "best.weights.h5").is_file()
    assert "Unable to register" not in train.stderr and "oneDNN" not in train.stderr

    for command in ("ir2net-export", "ir2net-zoo"):
        shown = subprocess.run([str(env / "bin" / command), "--help"], cwd=elsewhere, capture_output=True,
                               text=True, timeout=300)
        assert shown.returncode == 0 and "usage:" in shown.stdout, shown.stderr[-2000:]
    # The catalog's table is package data: the list answers from an install.
    listed = subprocess.run([str(env / "bin" / "ir2net-zoo"), "list", "IR2ResNet20"], cwd=elsewhere,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and "| IR2ResNet20 | paper | 32x32 |" in listed.stdout, listed.stderr[-2000:]
