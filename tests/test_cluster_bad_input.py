"""Clusters off the happy path (issue 20): configurations that cannot work
are named; Ctrl-C while the workers wait ends at once."""

import json
import os

import pytest
import tensorflow as tf

from tests_support import SMALL_ONE_EPOCH as SMALL


def test_cluster_configurations_that_cannot_work_are_named(monkeypatch):
    import socket

    from ir2net_tf.runs import distribute

    ps = '{"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}'
    with pytest.raises(distribute.ClusterError, match=r"\['ps'\]: parameter servers \('ps'\) .* not supported"):
        distribute.check_tf_config(ps)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name in distribute.SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    with pytest.raises(distribute.ClusterError, match="SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE not"):
        distribute.cluster_resolver()
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node1")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "2")
    monkeypatch.setenv("SLURM_PROCID", "zero")
    with pytest.raises(distribute.ClusterError, match="SLURM_PROCID='zero' is not a whole number"):
        distribute.cluster_resolver()
    # This worker's port taken by another process.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
                                                    "task": {"type": "worker", "index": 0}}))
        with pytest.raises(distribute.ClusterError, match=f"Port {port} of this worker's address .* in use"):
            distribute.check_port_free(distribute.cluster_resolver())


@pytest.mark.slow
def test_ctrl_c_while_workers_wait_ends_at_once(tmp_path):
    """Ctrl-C (to the process group, as a terminal sends it) while worker 0
    waits for an absent worker 1: it ends within seconds, not after
    --cluster_timeout, with one line and no traceback."""
    import signal
    import subprocess
    import sys
    import time

    from tests_support import ENV, REPO

    with __import__("socket").socket() as a, __import__("socket").socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        ports = [a.getsockname()[1], b.getsockname()[1]]
    env = dict(ENV, TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": 0}}))
    worker = subprocess.Popen([sys.executable, "-m", "train", *SMALL, "--strategy=multi_worker",
                               f"--model_dir={tmp_path}/run"], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    children = f"/proc/{worker.pid}/task/{worker.pid}/children"
    while time.time() < deadline and worker.poll() is None:  # the watchdog starts when the wait does
        if open(children).read().strip():
            break
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(worker.pid, signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGINT, err[-3000:]
    assert "Interrupted (Ctrl-C) while worker worker:0 waited for the cluster" in err and "Traceback" not in err


@pytest.mark.parametrize("error, lost", [
    (tf.errors.UnavailableError(None, None, "Collective ops is aborted by: Connection reset by peer"), True),
    (tf.errors.AbortedError(None, None, "peer gone"), True),
    (tf.errors.UnknownError(None, None, "Collective ops is aborted by: task 0 exited"), True),
    (tf.errors.ResourceExhaustedError(None, None, "No space left on device"), False),
    (tf.errors.PermissionDeniedError(None, None, "read-only file system"), False),
])
def test_a_save_a_lost_worker_aborted_is_not_a_write_error(tmp_path, error, lost):
    """A worker killed while another saves aborts the save's collectives: the
    survivor says it lost the cluster (run.train_stage), not that the disk is
    full; a real write failure is still one line naming the folder."""
    from ir2net_tf._util.files import OutputError
    from ir2net_tf.runs import checkpoints

    class Manager:
        directory = str(tmp_path)

        def save(self, checkpoint_number):
            raise error

    with pytest.raises(tf.errors.OpError if lost else OutputError) as raised:
        checkpoints.save(Manager(), 1)
    assert lost or "Cannot write" in str(raised.value)
