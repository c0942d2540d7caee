"""Test set-up: the installed ir2net_tf (Keras 2 before TensorFlow), shared fixtures."""

import os

import ir2net_tf  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import pytest  # noqa: E402

from tests_support import SMALL, cli, kill_mid_epoch_and_resume  # noqa: E402
from ir2net_tf.runs import artifacts  # noqa: E402


@pytest.fixture(scope="session")
def killed_and_resumed(tmp_path_factory):
    """A digits run SIGKILLed right after a mid-epoch checkpoint, then started
    again with the same command."""
    model_dir = str(tmp_path_factory.mktemp("resume") / "run")
    args = [*SMALL, f"--model_dir={model_dir}", "--checkpoint_every=4"]
    killed_at, err = kill_mid_epoch_and_resume(args, os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2"))
    return model_dir, killed_at, err


@pytest.fixture(scope="session")
def digits_run_16(tmp_path_factory):
    """A finished digits run of ``python -m train`` at the demo's 16×16 input
    (two epochs): large enough for LCE's zero-padded binary convolutions
    (ir2net_tf.deploy.zero_padding_hazards), so its .tflite is exact."""
    model_dir = str(tmp_path_factory.mktemp("digits16") / "run")
    process = cli(f"--model_dir={model_dir}", "--batch_size=32", "--epochs=2", "--verbose=0")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return model_dir


@pytest.fixture(scope="module")
def recovery_weights(tmp_path_factory):
    """Weights of IR2ResNet20 at 8×8 with its recovery head, in each format."""
    from ir2net_tf import zoo

    folder = tmp_path_factory.mktemp("weights")
    model = zoo.build("IR2ResNet20", input_shape=(8, 8, 3), num_classes=10)
    paths = {}
    for suffix in (".weights.h5", ".h5"):
        paths[suffix] = str(folder / f"recovery{suffix}")
        model.save_weights(paths[suffix])
    paths[".keras"] = str(folder / "recovery.keras")
    model.save(paths[".keras"])
    return paths


@pytest.fixture(scope="session")
def zoo_model():
    """``zoo_model(name, **kwargs)``: ``zoo.build(name, **kwargs)``, built once
    for the tests that only read a model (parameter counts, shapes, cost
    counts; test_zoo and test_complexity ask for the same ImageNet
    IR2ResNet18s, seconds each to build). The 8 last used are kept. A test
    that trains, loads weights into or otherwise changes a model builds its own."""
    from collections import OrderedDict

    from ir2net_tf import zoo

    built = OrderedDict()

    def get(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = zoo.build(name, **kwargs)
            while len(built) > 8:
                built.popitem(last=False)
        built.move_to_end(key)
        return built[key]

    return get


# Fixtures that train, export or start processes (tens of seconds each):
# every test that uses one is slow, whatever its own time, since running it
# alone pays for the fixture. With the tests marked `slow` where they are
# defined (over ~2 s on 2 cores, measured with --durations=0), `pytest -m
# "not slow"` is the fast tier.
SLOW_FIXTURES = {
    "killed_and_resumed", "digits_run_16", "exported", "imported_b", "interrupted_cluster",
    "irnet_run", "installed", "smoke", "tars", "uninterrupted", "vgg", "served_weights", "recovery_weights",
    "sharded_cluster",
}


# tryfirst: pytest-xdist's own hook (in each worker process) reads the
# xdist_group markers to name the groups, so they must be set before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Marks the tests that use an expensive fixture slow, and groups them for
    pytest-xdist (``--dist loadgroup``, pytest.ini): the tests that share such a
    fixture, directly or through another test, run in one process, so each
    fixture is computed once rather than once per process. Then puts the slow
    tests first."""
    parent = {}

    def root(name):
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    shared = [(item, sorted(SLOW_FIXTURES & set(item.fixturenames))) for item in items]
    for _, names in shared:
        for name in names[1:]:
            parent[root(name)] = root(names[0])
    for item, names in shared:
        if names:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(root(names[0])))
    # Slow tests first (a stable sort: each keeps its place among its kind).
    # pytest-xdist hands out the groups first, then single tests in this
    # order: the minutes-long ones start early and the fast tier's hundreds
    # of short tests fill the end, so neither process idles while the other
    # finishes a long test (alphabetical order left the slowest for last).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
