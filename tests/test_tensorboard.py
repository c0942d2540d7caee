"""TensorBoard serves a finished run from the project's own environment: the
run's scalars and restriction images, read through TensorBoard's HTTP API
(pyproject's setuptools<81 keeps the pkg_resources TensorBoard 2.16 imports)."""

import pytest
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

WAIT = 120  # seconds for TensorBoard to start and load the run's events


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def tensorboard_command() -> list:
    """The installed environment's ``tensorboard`` console script."""
    script = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "tensorboard.main"]


def read_run(command: list, logdir: str) -> dict:
    """Starts TensorBoard on ``logdir`` at 127.0.0.1 (a free port), waits
    (bounded) until it serves the run's scalars and restriction images, and
    returns {"scalars": run → tags, "images": run → tags, "png": first image
    bytes}; stops it in every case."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([*command, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
                                "--load_fast=false", "--reload_interval=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"tensorboard exited {process.returncode}:\n{process.stdout.read()[-3000:]}")
            try:
                scalars = json.loads(_get(f"{base}/data/plugin/scalars/tags"))
                images = json.loads(_get(f"{base}/data/plugin/images/tags"))
                if any(tags for tags in images.values()) and any(tags for tags in scalars.values()):
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            assert time.monotonic() < deadline, f"tensorboard served no run within {WAIT} s"
            time.sleep(1)
        run, tags = next((r, t) for r, t in images.items() if t)
        tag = sorted(tags)[0]
        listing = json.loads(_get(f"{base}/data/plugin/images/images?"
                                  + urllib.parse.urlencode({"run": run, "tag": tag})))
        png = _get(f"{base}/data/plugin/images/individualImage?{listing[-1]['query']}")
        return {"scalars": scalars, "images": images, "png": png}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_environment_keeps_pkg_resources():
    from importlib.metadata import version

    major = int(version("setuptools").split(".")[0])
    assert major < 81, (f"setuptools {version('setuptools')} here, but pyproject.toml requires setuptools<81 (TensorBoard "
                        "2.16 imports pkg_resources): install the project again, e.g. pip install -e .")


@pytest.mark.slow
def test_tensorboard_serves_a_finished_run(digits_run_16):
    served = read_run(tensorboard_command(), os.path.join(digits_run_16, "logs"))
    scalar_tags = {tag for tags in served["scalars"].values() for tag in tags}
    assert {"epoch_loss", "epoch_accuracy", "epoch_top5", "epoch_kept"} <= scalar_tags, scalar_tags
    assert {f"restriction/lambda_erasing_{p}pct" for p in (10, 25, 50)} <= scalar_tags, scalar_tags
    image_tags = {tag for tags in served["images"].values() for tag in tags}
    assert "restriction/0" in image_tags, served["images"]
    assert served["png"].startswith(b"\x89PNG\r\n\x1a\n")
