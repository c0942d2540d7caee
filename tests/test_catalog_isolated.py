"""catalog.isolated: work in a fresh process, whose crash ends only it (the
verify sweep's rows and the benchmark's conversions run this way)."""

import os
import signal

import pytest

from ir2net_tf.catalog import isolated


def pid_and(value):
    return os.getpid(), value


def crash():
    os.kill(os.getpid(), signal.SIGSEGV)  # as LCE's converter did on larq-zoo DoReFaNet at 224


def refuse(message):
    raise ValueError(message)


def test_the_work_runs_in_another_process_and_its_answer_comes_back():
    pid, value = isolated.call(pid_and, value=[1, 2])
    assert pid != os.getpid() and value == [1, 2]


def test_a_crash_is_an_exception_here_and_not_the_end_of_this_process():
    with pytest.raises(isolated.ProcessDied, match=r"the process of crash\(\) died"):
        isolated.call(crash)
    assert isolated.call(pid_and, 3)[1] == 3  # and the next call works


def test_its_own_exceptions_come_back_as_they_are():
    with pytest.raises(ValueError, match="no such thing"):
        isolated.call(refuse, "no such thing")
