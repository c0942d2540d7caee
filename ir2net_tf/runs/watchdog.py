"""A cluster start-up watchdog, run as a separate small process.

While a worker waits for the others, TensorFlow blocks inside C++ holding
Python's lock, so no Python thread or signal handler of the waiting process
can act; a child process can. Usage (``distribute.cluster_watchdog``
starts it): ``python watchdog.py PARENT_PID TIMEOUT TASK ADDRESS...``. It
waits for its standard input to close (the parent is done, or gone); if
``TIMEOUT`` seconds pass first, it prints which addresses do not answer and
ends the parent. Standard library only: it starts in milliseconds.
"""

import os
import select
import signal
import socket
import sys


def reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def interrupted(task: str, parent: int):
    """Ctrl-C reaches the whole process group: the worker, whose SIGINT has
    its default action while it waits, ends; this says why, in one line."""

    def handle(signum, frame):
        print(f"Interrupted (Ctrl-C) while worker {task} waited for the cluster to form; nothing was trained or "
              "written. Run the same command to start again.", file=sys.stderr, flush=True)
        try:
            os.kill(parent, signal.SIGKILL)  # in case only this process got it
        except OSError:
            pass
        os._exit(130)

    return handle


def main(argv):
    parent, timeout, task, addresses = int(argv[1]), float(argv[2]), argv[3], argv[4:]
    signal.signal(signal.SIGINT, interrupted(task, parent))
    ready, _, _ = select.select([sys.stdin], [], [], max(timeout, 0.0))
    if ready:  # closed by the parent (done) or by its death
        return
    silent = [a for a in addresses if not reachable(a)]
    detail = f"no answer from {', '.join(silent)}" if silent else "every address answers, but not every worker joined"
    print(f"error: Worker {task} could not form the cluster {addresses} within {argv[2]} s ({detail}). Start every "
          "worker (same command, its own task), check the addresses and firewalls, or raise --cluster_timeout.",
          file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv)
