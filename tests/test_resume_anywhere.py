"""A run killed at any moment resumes to the same weights.

Not moments chosen by hand: a watcher sees every file the run writes (and
every change to one) and SIGKILLs the run right after a chosen one — one
kill for each of a spread of the files an uninterrupted run writes, in the
order it writes them — or a chosen time after it started. The kills form one
chain: each killed run is started again with the same command, which is
killed at the next moment, and the last one runs to the end. After every
kill the directory may describe no more progress than its checkpoints hold,
and whatever it has finished must be exportable; at the end the weights
(and the validation figures) must equal an uninterrupted run's, bit for bit.

``IR2NET_RESUME_MOMENTS=N`` tries N moments instead of the default.
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from ir2net_tf.runs import artifacts, checkpoints, loading

from tests_support import ENV, REPO, checkpoint_state, weights_file_values

# Two stages of two 4-step epochs, a checkpoint every 2 steps: every kind of
# moment (steps, step and epoch-end checkpoints, validation, the epoch's
# files, between epochs, the stage change, the run's final files) in a short run.
ARGS = ["--image_size=8", "--batch_size=32", "--epochs=2", "--steps_per_epoch=4", "--checkpoint_every=2",
        "--stage=both", "--verbose=0"]
MOMENTS = int(os.environ.get("IR2NET_RESUME_MOMENTS", "10"))


def _key(path: str) -> str:
    """A file's name with what differs between runs (temporary names, event
    files' time stamps and host) taken out."""
    path = re.sub(r"tfevents\..*", "tfevents.*", path)
    path = re.sub(r"\.tmp\w*$", ".tmp", path)
    return re.sub(r"\.[\w-]{6,}\.tmp", ".tmp", path)


def _snapshot(root: str) -> dict:
    state = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            state[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return state


def _train(model_dir, kill=None, timeout=600, envs=(ENV,), args=ARGS):
    """``python -m train`` into ``model_dir`` (one process per environment in
    ``envs``: the workers of a cluster), watched: ``kill`` is None (run to
    the end), ``("file", key)`` (SIGKILL right after the first change of a
    file with that key) or ``("time", seconds)`` (SIGKILL that long after the
    run's first file change); a third element, a worker's index, kills only
    that worker (and waits for the others to end). Returns (the return codes,
    the stderr texts, the keys of the changes seen in order, seconds from the
    first change to the end)."""
    processes = [subprocess.Popen([sys.executable, "-m", "train", *args, f"--model_dir={model_dir}"], cwd=REPO,
                                  env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for env in envs]
    seen, before, first = [], _snapshot(model_dir) if os.path.isdir(model_dir) else {}, None
    deadline = time.time() + timeout
    try:
        while any(p.poll() is None for p in processes) and time.time() < deadline:
            now = _snapshot(model_dir) if os.path.isdir(model_dir) else {}
            changed = [_key(p) for p in sorted(now, key=lambda p: now[p][1]) if now[p] != before.get(p)]
            before = now
            if changed and first is None:
                first = time.time()
            seen += changed
            if kill and ((kill[0] == "file" and kill[1] in changed)
                         or (kill[0] == "time" and first is not None and time.time() - first >= kill[1])):
                for index, process in enumerate(processes):
                    if len(kill) < 3 or kill[2] == index:
                        process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.003)
        errors = [p.communicate(timeout=max(1, deadline - time.time()))[1] for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return [p.returncode for p in processes], errors, seen, time.time() - (first or time.time())


def _checkpointed_epoch(model_dir, stage):
    latest = checkpoints.newest_intact(os.path.join(model_dir, artifacts.CHECKPOINTS, f"stage{stage}"))
    return int(tf.train.load_checkpoint(latest).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")) if latest else 0


def _check_after_kill(model_dir):
    """The directory describes no more than its checkpoints hold, and what it
    has finished is exportable."""
    rows = artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))
    for stage in ("1", "2"):
        finished = [int(r["epoch"]) for r in rows if r["stage"] == stage]
        if finished:
            assert max(finished) <= _checkpointed_epoch(model_dir, stage), (stage, rows)
            weights = os.path.join(model_dir, artifacts.stage_weights(stage, "final"))
            assert weights_file_values(weights), weights
    if any(r["stage"] == "2" for r in rows):
        config = loading.read_config(model_dir)
        assert os.path.isfile(loading.run_weights(model_dir, config))


def _outcome(model_dir, stages=2):
    files = [artifacts.BEST_WEIGHTS, artifacts.FINAL_WEIGHTS, *(artifacts.stage_weights(s, k)
             for s in ("1", "2")[2 - stages:] for k in ("best", "final"))]
    weights = {name: weights_file_values(os.path.join(model_dir, name)) for name in files}
    validation = [(r["stage"], r["epoch"], r["val_loss"], r["val_accuracy"], r["val_top5"], r["learning_rate"])
                  for r in artifacts.read_metrics(os.path.join(model_dir, artifacts.METRICS))]
    return weights, validation


def targets(writes):
    """The files a run writes, in the order first written, that a kill can
    wait for. Temporary files (written, then renamed within milliseconds) are
    not among them: a watcher may miss them; the moments they mark are covered
    by the file renamed from them and by the time kills."""
    return [k for k in dict.fromkeys(writes) if not re.search(r"\.tmp|_temp", k)]


def plan(writes, span, count):
    """``count`` kill moments spread over a run that writes ``writes`` (file
    keys in order) over ``span`` seconds: two in three at a file (evenly over
    the distinct files, in the order first written), one in three at a time
    (evenly over the span)."""
    distinct = targets(writes)
    at_files = count - count // 3
    files = [distinct[round(i * (len(distinct) - 1) / max(1, at_files - 1))] for i in range(at_files)]
    # Times from each run's first write: a resumed run has less left to do
    # than the whole span, so they are spread over its first 40 % (start-up,
    # tracing, steps, a validation), where each run of the chain still is.
    times = [("time", span * (0.1 + 0.3 * i / max(1, count // 3 - 1))) for i in range(count // 3)]
    moments = [("file", f) for f in files]
    for i, moment in enumerate(times):  # interleaved
        moments.insert(3 * i + 2, moment)
    return moments


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("uninterrupted") / "run")
    (code,), (err,), writes, span = _train(model_dir)
    assert code == 0, err[-3000:]
    return model_dir, writes, span


@pytest.mark.slow
def test_killed_at_any_moment_resumes_to_the_same_weights(uninterrupted, tmp_path):
    reference, writes, span = uninterrupted
    model_dir = str(tmp_path / "run")
    moments = plan(writes, span, MOMENTS)
    killed = []
    for moment in moments:
        (code,), (err,), _, _ = _train(model_dir, kill=moment)
        if code == 0:  # the run ended before this moment came
            break
        assert code == -signal.SIGKILL, err[-3000:]
        killed.append(moment)
        _check_after_kill(model_dir)
    (code,), (err,), _, _ = _train(model_dir)
    assert code == 0 and "Traceback" not in err, err[-3000:]
    print(f"{len(killed)} of {len(moments)} kill moments landed; the resumed run equals the uninterrupted one",
          file=sys.stderr)
    assert len(killed) >= len(moments) - 2, (killed, moments)
    (weights, validation), (expected_weights, expected_validation) = _outcome(model_dir), _outcome(reference)
    assert validation == expected_validation
    for name, arrays in expected_weights.items():
        assert arrays.keys() == weights[name].keys(), name
        for key, value in arrays.items():
            np.testing.assert_array_equal(weights[name][key], value, err_msg=f"{name}: {key}")


@pytest.mark.slow
def test_a_cluster_killed_at_any_moment_resumes_to_the_same_weights(tmp_path):
    """Two workers on 127.0.0.1 (one stage): both killed at a file, one killed
    at a file and at a time (the other then ends on its own, saying it lost
    the cluster), then the same command on both to the end."""
    from test_multi_worker import free_ports, tf_config_env

    args = [a for a in ARGS if not a.startswith("--stage")] + ["--strategy=multi_worker"]
    ports = free_ports(2)
    envs = [tf_config_env(ports, i) for i in range(2)]
    reference = str(tmp_path / "uninterrupted")
    codes, errors, writes, span = _train(reference, envs=envs, args=args)
    assert codes == [0, 0], [e[-2000:] for e in errors]
    distinct = targets(writes)
    # Both at a file a third into the run, worker 1 alone at a file two thirds
    # into it, the chief alone at a time.
    moments = [("file", distinct[len(distinct) // 3]), ("file", distinct[2 * len(distinct) // 3], 1),
               ("time", span * 0.4, 0)]
    model_dir = str(tmp_path / "run")
    for moment in moments:
        codes, errors, _, _ = _train(model_dir, kill=moment, envs=envs, args=args)
        assert -signal.SIGKILL in codes and 0 not in codes, (moment, codes, [e[-2000:] for e in errors])
        for code, err in zip(codes, errors):
            if code != -signal.SIGKILL:  # the survivor: one line, no traceback
                assert "Traceback" not in err and "lost the cluster" in err, err[-3000:]
        _check_after_kill(model_dir)
    codes, errors, _, _ = _train(model_dir, envs=envs, args=args)
    assert codes == [0, 0], [e[-3000:] for e in errors]
    # Every step once: the same epoch, step and optimizer step as the uninterrupted run.
    ckpt = os.path.join(artifacts.CHECKPOINTS, "stage2")
    assert checkpoint_state(os.path.join(model_dir, ckpt)) == checkpoint_state(os.path.join(reference, ckpt))
    # Several replicas add in no fixed order (op determinism is off for them,
    # docs/troubleshooting.md), so two uninterrupted cluster runs differ in
    # their last bits too: the same figures and weights up to rounding.
    (weights, validation), (expected_weights, expected_validation) = _outcome(model_dir, 1), _outcome(reference, 1)
    assert [v[:2] for v in validation] == [v[:2] for v in expected_validation]
    np.testing.assert_allclose(np.array([v[2:] for v in validation], float),
                               np.array([v[2:] for v in expected_validation], float), rtol=1e-4, atol=1.0 / 360)
    largest = 0.0
    for name, arrays in expected_weights.items():
        for key, value in arrays.items():
            np.testing.assert_allclose(weights[name][key], value, rtol=1e-3, atol=1e-4, err_msg=f"{name}: {key}")
            largest = max(largest, float(np.max(np.abs(weights[name][key] - value), initial=0.0)))
    print(f"cluster: {len(moments)} kills; largest weight difference from the uninterrupted run {largest:.3g}",
          file=sys.stderr)


def test_a_checkpoint_that_does_not_fit_is_one_line_naming_it(tmp_path):
    small, large = (tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(units)]) for units in (2, 3))
    path = tf.train.Checkpoint(model=small, epoch=tf.Variable(1)).save(str(tmp_path / "ckpt"))
    epoch = tf.Variable(0)
    # A part the file lacks (a checkpoint from before it existed) keeps its value.
    checkpoints.restore(path, dict(model=tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)]),
                                   epoch=epoch, last_row=tf.Variable([7.0])))
    assert int(epoch.numpy()) == 1
    with pytest.raises(ValueError) as error:
        checkpoints.restore(path, dict(model=large, epoch=epoch))
    message = str(error.value)
    assert "\n" not in message and path in message and "--overwrite" in message, message


def test_an_unfinished_run_exports_the_epochs_its_final_stage_finished(tmp_path):
    config = {"model": "IR2ResNet20", "training": {"stage": "2"}}
    with pytest.raises(ValueError, match="has not finished an epoch"):
        loading.run_weights(str(tmp_path), config)
    (tmp_path / artifacts.stage_weights("2", "final")).write_bytes(b"w")
    assert loading.run_weights(str(tmp_path), config).endswith(artifacts.stage_weights("2", "final"))
    (tmp_path / artifacts.stage_weights("2", "best")).write_bytes(b"w")
    assert loading.run_weights(str(tmp_path), config).endswith(artifacts.stage_weights("2", "best"))
    # Stage 1 of --stage both is not the binary model the run is for: named, with how to use it anyway.
    both = {"model": "IR2ResNet20", "training": {"stage": "both"}}
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / artifacts.stage_weights("1", "best")).write_bytes(b"w")
    with pytest.raises(ValueError, match="stopped during stage 1"):
        loading.run_weights(str(tmp_path / "one"), both)
