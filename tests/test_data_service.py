"""``--data_service``: training batches made by a tf.data service dispatcher
and its worker (``python -m zoo data-service``), on 127.0.0.1 here. The run is
the one it would be without the service, killed and resumed included; a
dispatcher with two workers (batches out of order), a malformed address and
one where nothing answers are each refused in one line (issue 27)."""

import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import config, data
from ir2net_tf.data import service
from ir2net_tf.runs import artifacts

from tests_support import ENV, REPO, SMALL, SMALL_ONE_EPOCH, kill_mid_epoch_and_resume, train_cli
from tests_support import weights_file_values

RULE = config.SETTINGS["data_service"].addresses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("text, parsed", [
    ("cpu-1:5050", ["grpc://cpu-1:5050"]),
    ("grpc://10.0.0.7:5050", ["grpc://10.0.0.7:5050"]),
    ("a:1, b:65535", ["grpc://a:1", "grpc://b:65535"]),
])
def test_addresses_parse(text, parsed):
    assert RULE.parse(text) == parsed and RULE.problem(text) is None


@pytest.mark.parametrize("text", ["cpu-1", ":5050", "cpu-1:", "cpu-1:0", "cpu-1:65536", "cpu-1:http",
                                  "a:1,,b:2", "http://x/y:80", " , "])
def test_malformed_addresses_are_refused_in_one_line_naming_the_flag(text, capsys, tmp_path):
    assert RULE.problem(text)
    with pytest.raises(ValueError, match="--data_service must be `host:port`"):
        config.TrainConfig(data_service=text)
    code, _, err = train_cli(capsys, *SMALL_ONE_EPOCH, f"--data_service={text}", f"--model_dir={tmp_path}/run")
    assert code == 2 and "--data_service" in err and "host:port" in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "run")


def test_a_dispatcher_nobody_runs_is_named_before_any_file(capsys, tmp_path):
    port = free_port()
    code, _, err = train_cli(capsys, *SMALL_ONE_EPOCH, f"--data_service=127.0.0.1:{port}",
                             f"--model_dir={tmp_path}/run")
    assert code == 1 and f"No tf.data service dispatcher answers at 127.0.0.1:{port}" in err, err
    assert "python -m zoo data-service" in err
    assert not os.path.exists(tmp_path / "run")


@pytest.fixture
def dispatcher():
    """An in-process dispatcher; ``add_worker()`` gives it one more worker."""
    svc = tf.data.experimental.service
    server = svc.DispatchServer(svc.DispatcherConfig(port=0))
    workers = []

    def add_worker():
        workers.append(svc.WorkerServer(svc.WorkerConfig(dispatcher_address=server.target[len("grpc://"):],
                                                         port=0)))

    yield server.target, add_worker
    for worker in workers:
        worker.stop()
    server.stop()


def test_one_worker_serves_the_pipelines_batches_in_order(dispatcher):
    address, add_worker = dispatcher
    add_worker()
    ds = data.load("digits", image_size=8, seed=3)
    here = list(ds.train(1, 64, skip_batches=2).as_numpy_iterator())
    there = list(service.served(ds.train(1, 64, skip_batches=2), address).as_numpy_iterator())
    assert len(there) == len(here) == ds.steps_per_epoch(64) - 2
    for (a_images, a_labels), (b_images, b_labels) in zip(here, there):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_labels, b_labels)


def test_a_second_worker_behind_the_dispatcher_stops_the_stream(dispatcher):
    address, add_worker = dispatcher
    add_worker()
    add_worker()  # each would make the whole job: batches arrive twice, out of order
    ds = data.load("digits", image_size=8, seed=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=service.ORDER_MARK):
        list(service.served(ds.train(0, 64), address).as_numpy_iterator())


@pytest.fixture
def data_service_command():
    """``python -m zoo data-service`` on 127.0.0.1: its address, once it serves."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "zoo", "data-service", "--host=127.0.0.1", f"--port={port}"],
                               cwd=REPO, env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stdout.readline()
    assert f"--data_service=127.0.0.1:{port}" in line, line + process.stderr.read()[-2000:]
    yield f"127.0.0.1:{port}"
    process.terminate()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err[-2000:]


def test_a_run_through_the_service_killed_and_resumed_equals_one_made_here(killed_and_resumed,
                                                                           data_service_command, tmp_path):
    """The same command as ``killed_and_resumed`` (SMALL, a checkpoint every 4
    steps, SIGKILL after a mid-epoch checkpoint, resumed) with the batches made
    by the service: the same final weights and validation figures, bit for bit
    (``killed_and_resumed`` itself equals an uninterrupted run:
    tests/test_resume_anywhere.py)."""
    here = killed_and_resumed[0]
    model_dir = str(tmp_path / "run")
    args = [*SMALL, f"--model_dir={model_dir}", "--checkpoint_every=4", f"--data_service={data_service_command}"]
    _, err = kill_mid_epoch_and_resume(args, os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2"))
    assert "Traceback" not in err and "made by the tf.data service" in err, err[-3000:]
    for name in (artifacts.FINAL_WEIGHTS, artifacts.BEST_WEIGHTS):
        expected, got = weights_file_values(os.path.join(here, name)), weights_file_values(os.path.join(model_dir, name))
        assert expected.keys() == got.keys() and expected
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{name}: {key}")

    def validation(folder):
        return [{k: v for k, v in row.items() if k.startswith("val_")}
                for row in artifacts.read_metrics(os.path.join(folder, artifacts.METRICS))]

    assert validation(model_dir) == validation(here)


def test_the_command_refuses_a_port_in_use_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run([sys.executable, "-m", "zoo", "data-service", f"--port={port}"], cwd=REPO,
                                 env=ENV, text=True, capture_output=True, timeout=120)
    assert process.returncode == 2 and "Traceback" not in process.stderr, process.stderr[-2000:]
    assert re.search(r"could not start on port \d+.*Choose free ports", process.stderr), process.stderr


WATCHED = """
import socket, sys, time
from ir2net_tf.data import service
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
address = "grpc://127.0.0.1:%d" % listener.getsockname()[1]
with service.Watch([address], patience=1.0, every=0.2):
    time.sleep(1.0)
    print("still training", flush=True)
    listener.close()  # the service is gone
    time.sleep(30)
print("never", flush=True)
"""


def test_a_dispatcher_that_stops_answering_ends_the_run_in_one_line():
    """Without the watch the client waits for the next batch forever (tried by
    hand: a killed `python -m zoo data-service` left a run hanging)."""
    process = subprocess.run([sys.executable, "-c", WATCHED], cwd=REPO, env=ENV, text=True, capture_output=True,
                             timeout=120)
    assert process.returncode == 1 and process.stdout == "still training\n", process.stdout + process.stderr
    assert re.search(r"^error: The tf.data service dispatcher at 127.0.0.1:\d+ has not answered for 1 s.*same "
                     "command to resume", process.stderr, flags=re.M), process.stderr


def test_more_dispatchers_than_workers_are_refused_before_any_file(capsys, tmp_path):
    code, _, err = train_cli(capsys, *SMALL_ONE_EPOCH, "--data_service=127.0.0.1:1,127.0.0.1:2",
                             f"--model_dir={tmp_path}/run")
    assert code == 1 and "names 2 dispatchers for 1 worker(s)" in err, err
    assert not os.path.exists(tmp_path / "run")
