"""Training on a cluster, for real: two worker processes on 127.0.0.1 (one
started the way SLURM starts them, one from TF_CONFIG), killed, preempted
and resumed; the sharded input; start-up errors; the intact-checkpoint
fallback and Ctrl-C of a one-process run."""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf import data
from ir2net_tf.runs import artifacts, checkpoints, distribute

from tests_support import ENV, REPO, SMALL, STEPS, check_metrics_match_evaluate, checkpoint_state, cli

RUN = [*SMALL[:2], "--epochs=3", "--verbose=0", "--strategy=multi_worker"]


def free_ports(count, start=None):
    """``count`` free ports on 127.0.0.1: any, or consecutive from ``start``."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for i, s in enumerate(sockets):
            s.bind(("127.0.0.1", 0 if start is None else start + i))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config_env(ports, index):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))


def slurm_env():
    """task index → what srun sets for that task of a two-task step on one
    node; the job id is picked so that the ports it implies are free."""
    while True:
        job = random.randrange(1, 10**6)
        try:
            free_ports(2, start=distribute.SLURM_PORT_BASE + job % distribute.SLURM_PORT_RANGE)
            break
        except OSError:
            continue
    env = {k: v for k, v in ENV.items() if k != "TF_CONFIG"}
    return lambda i: dict(env, SLURM_JOB_ID=str(job), SLURM_PROCID=str(i), SLURM_STEP_NUM_TASKS="2",
                          SLURM_STEP_NODELIST="127.0.0.1", SLURM_STEP_TASKS_PER_NODE="2")


def start(envs, *args):
    return [subprocess.Popen([sys.executable, "-m", "train", *args], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for env in envs]


def finish(workers, timeout=600):
    return [(w.communicate(timeout=timeout)[1], w.returncode) for w in workers]


def wait_for_checkpoint(directory, accept, workers, timeout=300):
    """Waits until the chief's latest checkpoint state satisfies ``accept``."""
    deadline = time.time() + timeout
    while time.time() < deadline and all(w.poll() is None for w in workers):
        try:
            if tf.train.latest_checkpoint(directory) and accept(checkpoint_state(directory)):
                return
        except (tf.errors.OpError, ValueError):  # read while being written
            pass
        time.sleep(0.05)
    raise AssertionError("no such checkpoint; logs: " + "\n".join(w.communicate()[1][-2000:] for w in workers))


def stray_worker_folders(model_dir):
    return [os.path.join(root, d) for root, dirs, _ in os.walk(model_dir) for d in dirs if "workertemp" in d]


@pytest.fixture(scope="module")
def interrupted_cluster(tmp_path_factory):
    """Three digits epochs on two workers: SIGTERMed mid-epoch 1, started
    again and SIGKILLed mid-epoch 2, then finished by workers that SLURM's
    variables describe (instead of TF_CONFIG)."""
    model_dir = str(tmp_path_factory.mktemp("cluster") / "run")
    ckpt_dir = os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")
    ports = free_ports(2)
    envs = [tf_config_env(ports, i) for i in range(2)]
    args = [*RUN, f"--model_dir={model_dir}", "--checkpoint_every=4"]
    workers = start(envs, *args)
    wait_for_checkpoint(ckpt_dir, lambda state: state[0] == 0, workers)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    stopped = finish(workers)
    at_stop = checkpoint_state(ckpt_dir)
    workers = start(envs, *args)
    wait_for_checkpoint(ckpt_dir, lambda state: state[0] == 1 and state[1] > 0, workers)
    for w in workers:
        w.send_signal(signal.SIGKILL)
    killed = finish(workers)
    at_kill = checkpoint_state(ckpt_dir)
    slurm = slurm_env()
    return dict(model_dir=model_dir, ckpt_dir=ckpt_dir, stopped=stopped, at_stop=at_stop, killed=killed,
                at_kill=at_kill, finished=finish(start([slurm(0), slurm(1)], *args)))


@pytest.mark.slow
def test_sigterm_saves_the_current_step_on_every_worker(interrupted_cluster):
    steps = set()
    for log, code in interrupted_cluster["stopped"]:
        assert code == 128 + signal.SIGTERM and "Traceback" not in log, log[-3000:]
        match = re.search(r"Stopped by SIGTERM in stage 2, epoch 1, step (\d+) .*Run the same command to resume\.", log)
        assert match, log[-3000:]
        steps.add(int(match.group(1)))
    (step,) = steps  # both workers stopped at the same step, which was saved
    assert 0 < step < STEPS and interrupted_cluster["at_stop"] == (0, step, step)
    # The restart lost no step.
    for log, _ in interrupted_cluster["killed"]:
        assert (f"Resuming stage 2 from {interrupted_cluster['ckpt_dir']}/ckpt-{step}: epoch 1, step {step} "
                f"(optimizer step {step})") in log, log[-3000:]


def test_killed_cluster_resumes_and_ends_where_an_uninterrupted_run_does(interrupted_cluster):
    epoch, step, iterations = interrupted_cluster["at_kill"]
    assert epoch == 1 and 0 < step < STEPS and iterations == STEPS + step
    for log, code in interrupted_cluster["finished"]:
        assert code == 0, log[-3000:]
        assert f"Resuming stage 2 from {interrupted_cluster['ckpt_dir']}/ckpt-{iterations}: epoch 2, step {step}" in log
    # An uninterrupted run ends at epoch 3, step 0, optimizer step 3 epochs' steps.
    assert checkpoint_state(interrupted_cluster["ckpt_dir"]) == (3, 0, 3 * STEPS)


def test_the_chiefs_directory_holds_the_run_and_no_worker_folders(interrupted_cluster):
    model_dir = interrupted_cluster["model_dir"]
    for name in (artifacts.CONFIG, artifacts.BEST_WEIGHTS, artifacts.FINAL_WEIGHTS, artifacts.CURVES):
        assert os.path.getsize(os.path.join(model_dir, name)) > 0
    rows = artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert not stray_worker_folders(model_dir)


@pytest.mark.slow
def test_the_chiefs_metrics_are_the_mean_over_all_validation_examples(interrupted_cluster):
    """metrics.csv (and so TensorBoard and the closing line) holds what one
    process evaluates of the same weights, not the workers' sum."""
    check_metrics_match_evaluate(interrupted_cluster["model_dir"], "2")


@pytest.mark.slow
def test_start_up_errors_name_the_problem(tmp_path):
    lone = free_ports(2)
    different, odd = free_ports(2), free_ports(2)
    runs = [
        # A worker whose peer never starts.
        (start([tf_config_env(lone, 0)], *RUN, "--cluster_timeout=5", f"--model_dir={tmp_path}/a"),
         [rf"could not form the cluster .* within 5 s \(no answer from 127.0.0.1:{lone[1]}\)"]),
        # Workers started with different flags (--model_dir among them).
        (start([tf_config_env(different, 0)], *RUN, f"--model_dir={tmp_path}/b")
         + start([tf_config_env(different, 1)], *RUN, "--seed=1", f"--model_dir={tmp_path}/b2"),
         [rf"other flags than worker worker:1 \(model_dir: '{tmp_path}/b2' on worker:1, '{tmp_path}/b' here, "
          r"seed: 1 on worker:1, 0 here\)",
          rf"other flags than worker worker:0 \(model_dir: '{tmp_path}/b' on worker:0, '{tmp_path}/b2' here, "
          r"seed: 0 on worker:0, 1 here\)"]),
        # A global batch that does not split over the replicas.
        (start([tf_config_env(odd, i) for i in range(2)], *RUN, "--batch_size=33", f"--model_dir={tmp_path}/c"),
         [r"--batch_size 33 does not split evenly over the 2 replicas"] * 2),
    ]
    for workers, messages in runs:
        for (log, code), message in zip(finish(workers, timeout=300), messages):
            assert code != 0 and re.search(message, log) and "Traceback" not in log, log[-3000:]
    assert not os.path.exists(tmp_path / "b" / artifacts.CONFIG) and not os.path.exists(tmp_path / "b2")


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', 'TF_CONFIG has no "task"'),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
     r"task worker:1 is not in its cluster"),
])
def test_bad_tf_config_is_named(text, message):
    with pytest.raises(distribute.ClusterError, match=message):
        distribute.check_tf_config(text)


def test_shards_cover_the_epoch_once_in_one_process_order():
    size, batch = 320, 32
    images = np.zeros((size, 8, 8, 3), np.uint8)

    def source(epoch):  # the label is the example's id
        ds = tf.data.Dataset.from_tensor_slices((images, np.arange(size)))
        return ds.shuffle(size, seed=epoch, reshuffle_each_iteration=False)

    ids = data.Dataset("ids", size, size, 0, source, None, "none", 8)
    whole = [labels for _, labels in ids.train(1, batch)]
    shards = [[labels for _, labels in ids.train(1, batch, shards=2, shard=i)] for i in range(2)]
    drawn = np.concatenate([np.concatenate(s) for s in shards])
    assert sorted(drawn) == list(range(size))
    # Global batch k is the two workers' k-th batches: one process's order.
    for k, labels in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([shards[0][k], shards[1][k]]), labels)
    # A resumed epoch skips the same global batches on every worker.
    resumed = [labels for _, labels in ids.train(1, batch, skip_batches=3, shards=2, shard=1)]
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(shards[1][3:]))
    # And the same augmentation: real digits, shifted images.
    digits = data.load("digits", image_size=8)
    one = next(iter(digits.train(0, 32)))[0]
    halves = [next(iter(digits.train(0, 32, shards=2, shard=i)))[0] for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), one)


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, caplog):
    step = tf.Variable(0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step, big=tf.Variable(tf.zeros([4096]))),
                                         str(tmp_path), max_to_keep=3)
    for value in (1, 2):
        step.assign(value)
        manager.save(checkpoint_number=value)
    with open(f"{manager.latest_checkpoint}.data-00000-of-00001", "r+b") as f:
        f.truncate(100)
    assert checkpoints.newest_intact(str(tmp_path)) == os.path.join(str(tmp_path), "ckpt-1")
    assert re.search(r"Resuming from \S+ckpt-1, the newest intact checkpoint \(skipped: \S+ckpt-2 is damaged",
                     caplog.text)
    os.remove(os.path.join(str(tmp_path), "ckpt-1.index"))
    with pytest.raises(ValueError, match=r"No checkpoint in .* can be read .*ckpt-2"):
        checkpoints.newest_intact(str(tmp_path))


@pytest.mark.slow
def test_ctrl_c_saves_the_step_and_says_how_to_resume(tmp_path):
    model_dir = str(tmp_path / "run")
    ckpt_dir = os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")
    process = cli(*SMALL, "--epochs=1", "--checkpoint_every=4", f"--model_dir={model_dir}")
    wait_for_checkpoint(ckpt_dir, lambda state: True, [process])
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(r"Stopped by Ctrl-C in stage 2, epoch 1, step (\d+) \(optimizer step \1\); checkpoint "
                         r"saved in \S+\. Run the same command to resume\.", last)
    assert match, err[-3000:]
    assert checkpoint_state(ckpt_dir) == (0, int(match.group(1)), int(match.group(1)))
