"""On a cluster each worker reads only its own files of a tensorflow-datasets
split (docs/distributed.md): a real prepared dataset of four files per split
(tests/sharded_ids.py), read in process (the shares, the steps, the
fallback, the rule for another worker count) and trained on two workers on
127.0.0.1 (what each worker read, counted; validation; a SIGKILL and resume).
"""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import sharded_ids
from ir2net_tf import data
from ir2net_tf.runs import artifacts, run

from tests_support import ENV, REPO, check_metrics_match_evaluate, checkpoint_state, weights_file_values

BATCH = 16
# Three files of the validation split (10, 10 and 7 examples): worker 0 gets
# 17 examples, worker 1 10, so the two evaluate different numbers of batches.
VALIDATION = "validation[:27]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tfds"))
    sharded_ids.prepare(folder)
    return folder


@pytest.fixture(scope="module")
def dataset(data_dir):
    return data.load(sharded_ids.NAME, image_size=8, data_dir=data_dir, validation_split=VALIDATION)


def read_ids(ds):
    return [sharded_ids.example_id(image) for image, _ in ds.as_numpy_iterator()]


def id_dataset(lengths, seed=0):
    """A Dataset of images 0… (label = the example's id) in files of
    ``lengths`` examples, read the way tfds reads files: worker ``shard``
    takes every ``shards``-th file, in an order of (seed, epoch, shards,
    shard)."""
    starts = np.cumsum([0, *lengths])
    size = int(starts[-1])
    images = np.zeros((size, 8, 8, 3), np.uint8)

    def read(shards, shard, epoch):
        mine = list(range(shard, len(lengths), shards))
        ids = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in mine])
        ds = tf.data.Dataset.from_tensor_slices((images[ids], ids))
        return ds if epoch is None else ds.shuffle(len(ids), seed=epoch * 1009 + shard * 31 + shards,
                                                   reshuffle_each_iteration=False)

    def source(epoch):
        return tf.data.Dataset.from_tensor_slices((images, np.arange(size))).shuffle(
            size, seed=epoch, reshuffle_each_iteration=False)

    files = data.SplitFiles("train", tuple(lengths), read)
    return data.Dataset("ids", size, size, size, source, lambda: source(0), "none", 8, seed,
                        train_files=files, eval_files=files)


def labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


# ------------------------------------------------------------------ in process


def test_each_worker_reads_only_its_own_files_of_a_tfds_split(dataset):
    train, evaluation = dataset.train_files, dataset.eval_files
    assert train.lengths == (25, 25, 25, 25) and evaluation.lengths == (10, 10, 7)
    assert train.files(2, 0) == [0, 2] and train.files(2, 1) == [1, 3]
    whole = read_ids(train.read(1, 0, None))
    shares = [read_ids(train.read(2, i, 0)) for i in range(2)]
    assert [len(s) for s in shares] == [50, 50] and len(set(whole)) == 100
    assert set(shares[0]).isdisjoint(shares[1]) and set(shares[0]) | set(shares[1]) == set(whole)
    # The order of an epoch: a function of (seed, epoch, workers, worker).
    assert read_ids(train.read(2, 0, 0)) == shares[0] != read_ids(train.read(2, 0, 1))
    assert sorted(read_ids(train.read(2, 0, 1))) == sorted(shares[0])
    held_out = [read_ids(evaluation.read(2, i, None)) for i in range(2)]
    assert [len(h) for h in held_out] == [17, 10]
    assert sorted(held_out[0] + held_out[1]) == sorted(read_ids(dataset.eval_source()))


def test_the_steps_are_those_the_worker_with_fewest_examples_fills(dataset):
    assert dataset.steps_per_epoch(BATCH) == 100 // BATCH == 6
    # 50 examples a worker, 8 a step: 6 steps, 2 examples left out on each.
    assert dataset.steps_per_epoch(BATCH, 2) == 6 and dataset.steps_per_epoch(32, 2) == 3
    uneven = id_dataset([30, 10, 25])  # worker 0: 55 examples, worker 1: 10
    assert uneven.steps_per_epoch(8, 2) == 10 // 4 and uneven.steps_per_epoch(8) == 65 // 8
    with pytest.raises(ValueError, match=r"one has only 10 examples, fewer than its 16 of a batch of 32"):
        uneven.steps_per_epoch(32, 2)
    lines = dataset.describe_reading(2, BATCH)
    assert "examples per worker [50, 50]" in lines[0] and "6 steps, leaving out 4 examples" in lines[0]
    assert "examples per worker [17, 10]" in lines[1]


def test_every_example_at_most_once_per_epoch_and_an_exact_resume():
    ids = id_dataset([13, 11, 9, 12, 10])  # worker 0: 32 examples, worker 1: 23
    steps = ids.steps_per_epoch(8, 2)
    assert steps == 23 // 4
    for epoch in (0, 1):
        shares = [labels(ids.train(epoch, 8, shards=2, shard=i)) for i in range(2)]
        assert [len(s) for s in shares] == [steps * 4] * 2
        assert len(set(shares[0]) | set(shares[1])) == 2 * steps * 4  # none twice
        assert set(shares[0]) <= {*range(0, 13), *range(24, 33), *range(45, 55)}  # its own files
        # Repeatable, and a resume skips exactly the batches consumed.
        np.testing.assert_array_equal(labels(ids.train(epoch, 8, shards=2, shard=0)), shares[0])
        resumed = labels(ids.train(epoch, 8, skip_batches=2, shards=2, shard=1))
        np.testing.assert_array_equal(resumed, shares[1][2 * 4:])
    # A worker's replicas split its part of the batch.
    np.testing.assert_array_equal(labels(ids.train(0, 8, shards=2, shard=1, local_batch_size=2)),
                                  labels(ids.train(0, 8, shards=2, shard=1)))


def test_augmentation_is_a_function_of_seed_epoch_workers_worker_and_position(dataset):
    first = [x.numpy() for x, _ in dataset.train(1, BATCH, shards=2, shard=1)]
    again = [x.numpy() for x, _ in dataset.train(1, BATCH, skip_batches=3, shards=2, shard=1)]
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(first[3:]))


def test_one_process_reads_as_before(dataset):
    """Without workers to share among, the files play no part: the same
    batches as a Dataset that knows none."""
    plain = dataclasses.replace(dataset, train_files=None, eval_files=None)
    for mine, before in zip(dataset.train(0, BATCH, skip_batches=1), plain.train(0, BATCH, skip_batches=1)):
        np.testing.assert_array_equal(mine[0].numpy(), before[0].numpy())
        np.testing.assert_array_equal(mine[1].numpy(), before[1].numpy())
    for mine, before in zip(dataset.evaluation(BATCH), plain.evaluation(BATCH)):
        np.testing.assert_array_equal(mine[0].numpy(), before[0].numpy())
    assert dataset.reading_order(1) == 1 and not dataset.file_sharded(1)


def test_fewer_files_than_workers_or_none_keep_the_example_slices(dataset, tmp_path):
    # Four files, six workers: each worker reads the whole split, as before.
    assert not dataset.file_sharded(6) and dataset.reading_order(6) == 1 and dataset.reading_order(4) == 4
    assert dataset.steps_per_epoch(12, 6) == 100 // 12
    lines = dataset.describe_reading(6, 12)
    assert all("fewer than the 6 workers: every worker reads the whole split" in line for line in lines), lines
    whole = labels(dataset.train(0, 12))
    sliced = [labels(dataset.train(0, 12, shards=6, shard=i)) for i in range(6)]
    for k in range(len(whole) // 12):
        np.testing.assert_array_equal(np.concatenate([s[2 * k:2 * k + 2] for s in sliced]), whole[12 * k:12 * k + 12])
    # Mocked data (and digits) have no files.
    assert "is not stored in files" in data.load("digits", image_size=8).describe_reading(2, 32)[0]
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        mocked = data.load("cifar10", image_size=8, data_dir=str(tmp_path))
    assert mocked.train_files is None and mocked.eval_files is None and not mocked.file_sharded(2)


def test_another_worker_count_resumes_at_an_epoch_end_only(dataset):
    runner = run.Run.__new__(run.Run)
    runner.dataset, runner.settings, runner.workers = dataset, {"batch_size": BATCH}, 1
    runner._check_workers("2", 2, epoch=1, step=0)  # at an epoch's end
    runner._check_workers("2", 1, epoch=1, step=3)  # the same count
    runner.workers = 6
    runner._check_workers("2", 5, epoch=1, step=3)  # neither file-sharded: one process's order
    runner._check_workers("2", 2, epoch=1, step=6)  # 2 workers' epoch done, its end left
    for stored, now in ((2, 1), (2, 4), (1, 2)):
        runner.workers = now
        with pytest.raises(ValueError) as error:
            runner._check_workers("2", stored, epoch=1, step=3)
        message = str(error.value)
        assert "\n" not in message and f"on {stored} worker" in message, message
        assert f"resume it on {stored} worker" in message and "stage 2, epoch 2 (step 3)" in message, message


def test_blank_examples_count_nowhere_in_the_validation_figures():
    """A worker's padded evaluation (weight-0 blanks filling its last
    batches, whole batches of blanks too) scores as its examples alone."""
    from ir2net_tf.models.common import FEATURES_LAYER
    from ir2net_tf.training.trainer import IR2Trainer

    tf.keras.utils.set_random_seed(0)

    # The smallest model IR2Trainer takes: its final feature map, then logits.
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Activation("linear", name=FEATURES_LAYER),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)])
    trainer = IR2Trainer(model, restriction_lambda=0.0)
    trainer.compile(optimizer="sgd")
    rng = np.random.default_rng(0)
    images, classes = rng.normal(size=(13, 8, 8, 3)).astype(np.float32), rng.integers(0, 10, 13).astype(np.int32)
    plain = trainer.evaluate(tf.data.Dataset.from_tensor_slices((images, classes)).batch(13), verbose=0,
                             return_dict=True)
    blanks = 4 * 8 - 13
    padded = tf.data.Dataset.from_tensor_slices((
        np.concatenate([images, np.zeros((blanks, 8, 8, 3), np.float32)]),
        np.concatenate([classes, np.zeros(blanks, np.int32)]),
        np.concatenate([np.ones(13, np.float32), np.zeros(blanks, np.float32)]))).batch(8)
    result = trainer.evaluate(padded, verbose=0, return_dict=True)
    for name in ("accuracy", "top5"):
        assert result[name] == pytest.approx(plain[name], abs=1e-7), (name, result, plain)
    assert np.isfinite(result["loss"])


# ------------------------------------------------------------------ on a cluster


ARGS = ["--recipe=digits", f"--dataset={sharded_ids.NAME}", f"--validation_split={VALIDATION}", "--image_size=8",
        f"--batch_size={BATCH}", "--epochs=2", "--checkpoint_every=2", "--verbose=0", "--strategy=multi_worker"]


def _start(envs, args):
    return [subprocess.Popen([sys.executable, "-c", "import sharded_ids; sharded_ids.train()", *args], cwd=REPO,
                             env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for env in envs]


def _finish(workers, timeout=400):
    return [(w.communicate(timeout=timeout)[1], w.returncode) for w in workers]


@pytest.fixture(scope="module")
def sharded_cluster(tmp_path_factory, data_dir):
    """Two workers training two epochs from the four-file dataset, each
    worker's reads recorded; then the same run SIGKILLed after a mid-epoch
    checkpoint and resumed."""
    from test_multi_worker import free_ports, tf_config_env, wait_for_checkpoint

    root = tmp_path_factory.mktemp("sharded")
    reads = root / "reads"
    reads.mkdir()
    path = os.pathsep.join([os.path.join(REPO, "tests"), REPO, ENV.get("PYTHONPATH", "")])
    ports = free_ports(2)
    envs = [dict(tf_config_env(ports, i), PYTHONPATH=path) for i in range(2)]
    args = [*ARGS, f"--data_dir={data_dir}"]
    reference, model_dir = str(root / "uninterrupted"), str(root / "run")
    started = time.time()
    uninterrupted = _finish(_start([dict(e, IR2NET_READ_LOG=str(reads)) for e in envs],
                                   [*args, f"--model_dir={reference}"]))
    ckpt_dir = os.path.join(model_dir, artifacts.CHECKPOINTS, "stage2")
    workers = _start(envs, [*args, f"--model_dir={model_dir}"])
    wait_for_checkpoint(ckpt_dir, lambda state: state[1] > 0, workers)
    for w in workers:
        w.send_signal(signal.SIGKILL)
    _finish(workers)
    at_kill = checkpoint_state(ckpt_dir)
    resumed = _finish(_start(envs, [*args, f"--model_dir={model_dir}"]))
    print(f"sharded cluster: {time.time() - started:.0f} s", file=sys.stderr)
    return dict(reads=str(reads), reference=reference, model_dir=model_dir, uninterrupted=uninterrupted,
                at_kill=at_kill, resumed=resumed)


def _lines(folder, name):
    path = os.path.join(folder, name)
    return open(path).read().split() if os.path.exists(path) else []


@pytest.mark.slow
def test_each_worker_of_a_cluster_reads_about_half_and_every_example_at_most_once(sharded_cluster, dataset):
    for log, code in sharded_cluster["uninterrupted"]:
        assert code == 0 and "Traceback" not in log, log[-3000:]
        assert "4 files shared out over 2 workers (examples per worker [50, 50])" in log, log[-3000:]
    reads, own = sharded_cluster["reads"], [set(read_ids(dataset.train_files.read(2, i, None))) for i in range(2)]
    steps = dataset.steps_per_epoch(BATCH, 2)
    for epoch in (0, 1):
        shares = [_lines(reads, f"train-s2-w{i}-e{epoch}.txt") for i in range(2)]
        for share, files in zip(shares, own):
            # Counted: the examples it read, each once, all from its own files:
            # about half of the split's 100 (48 trained on, at most its 50).
            assert steps * BATCH // 2 <= len(share) <= len(files) and len(set(share)) == len(share)
            assert set(share) <= files
        assert set(shares[0]).isdisjoint(shares[1])
    # Nothing read the whole training split (the one-process reads: the
    # restriction grid's four validation images only).
    assert not [n for n in os.listdir(reads) if n.startswith("train-s1")], os.listdir(reads)
    held_out = [_lines(reads, f"validation-s2-w{i}-e-.txt") for i in range(2)]
    # Two validations, each of its own 17 and 10 examples.
    assert [len(h) for h in held_out] == [34, 20] and set(held_out[0]).isdisjoint(held_out[1])


@pytest.mark.slow
def test_validation_on_a_cluster_is_a_one_process_evaluation(sharded_cluster):
    check_metrics_match_evaluate(sharded_cluster["reference"], "2")


@pytest.mark.slow
def test_a_killed_cluster_resumes_and_ends_as_an_uninterrupted_run(sharded_cluster):
    epoch, step, _ = sharded_cluster["at_kill"]
    assert 0 < step < 6, sharded_cluster["at_kill"]
    for log, code in sharded_cluster["resumed"]:
        # (Resumed on the two workers its checkpoint names: not refused.)
        assert code == 0 and "Traceback" not in log, log[-3000:]
        assert re.search(rf"Resuming stage 2 from \S+: epoch {epoch + 1}, step {step} ", log), log[-3000:]
    ckpt = os.path.join(artifacts.CHECKPOINTS, "stage2")
    model_dir, reference = sharded_cluster["model_dir"], sharded_cluster["reference"]
    assert checkpoint_state(os.path.join(model_dir, ckpt)) == checkpoint_state(os.path.join(reference, ckpt))
    # Up to the rounding of several replicas (tests/test_resume_anywhere.py).
    for name in (artifacts.FINAL_WEIGHTS, artifacts.BEST_WEIGHTS):
        expected, got = (weights_file_values(os.path.join(d, name)) for d in (reference, model_dir))
        assert expected.keys() == got.keys()
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-3, atol=1e-4, err_msg=f"{name}: {key}")
