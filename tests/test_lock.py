"""One run per model directory (ir2net_tf/runs/lock.py): the holder is named,
a killed holder's lock is taken over on its host, another host's is not.
(Two real trainings at once, and a SIGKILLed one restarted:
test_combinations.test_two_runs_at_once_then_kill_and_restart.)"""

import json
import os
import subprocess
import sys

import pytest

from ir2net_tf.runs import lock, model_dir


def test_a_held_directory_is_refused_naming_the_holder(tmp_path):
    held = lock.Lock(str(tmp_path)).acquire()
    other = lock.Lock(str(tmp_path))
    # The holder is this (live) process; a second lock on it is refused.
    with pytest.raises(ValueError, match=rf"{tmp_path}.*in use by another run \(pid {os.getpid()} on "):
        other.acquire()
    held.release()
    assert not os.path.exists(os.path.join(tmp_path, lock.LOCK))
    other.acquire().release()


def test_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = lock.Lock(str(tmp_path)).holder | {"pid": int(gone.stdout), "pid_start": None}
    with open(os.path.join(tmp_path, lock.LOCK), "w") as f:
        json.dump(stale, f)
    taken = lock.Lock(str(tmp_path)).acquire()
    assert lock.read(taken.path)["pid"] == os.getpid()
    assert "no longer running" in caplog.text
    taken.release()


def test_a_reused_process_id_is_not_the_holder(tmp_path):
    """The recorded pid is alive but started at another time: another process."""
    stale = lock.Lock(str(tmp_path)).holder | {"pid_start": "1"}
    with open(os.path.join(tmp_path, lock.LOCK), "w") as f:
        json.dump(stale, f)
    lock.Lock(str(tmp_path)).acquire().release()


def test_another_hosts_lock_says_how_to_clear_it(tmp_path):
    foreign = lock.Lock(str(tmp_path)).holder | {"host": "node-17"}
    path = os.path.join(tmp_path, lock.LOCK)
    with open(path, "w") as f:
        json.dump(foreign, f)
    with pytest.raises(ValueError, match=rf"node-17.*cannot be checked from here.*delete {path}"):
        lock.Lock(str(tmp_path)).acquire()
    assert lock.read(path)["host"] == "node-17"  # untouched


def test_the_lock_is_no_foreign_file_and_survives_replacing_a_run(tmp_path):
    held = lock.Lock(str(tmp_path)).acquire()
    assert model_dir.foreign_files(str(tmp_path)) == []
    model_dir.remove_run(str(tmp_path))
    assert os.path.exists(held.path)
    held.release()


@pytest.mark.parametrize("pid", [-1, 0, "12", None])
def test_a_lock_naming_no_process_is_stale(tmp_path, pid):
    """A damaged lock (no usable process id) blocks no run: os.kill(-1 or 0)
    would address a whole process group and call it alive."""
    damaged = lock.Lock(str(tmp_path)).holder | {"pid": pid}
    with open(os.path.join(tmp_path, lock.LOCK), "w") as f:
        json.dump(damaged, f)
    lock.Lock(str(tmp_path)).acquire().release()
