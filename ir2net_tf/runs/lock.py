"""One training run per model directory at a time: a lock file in it.

The lock is created with ``O_CREAT | O_EXCL`` (atomic on local disks and on
NFS v3+ and the cluster file systems a chief's model directory lives on), so
of two runs started at once exactly one gets it. It names its holder (host,
process id and that process's start time, when the run began, the command),
so the other is refused with a message saying who holds the directory.

A run killed with SIGKILL cannot remove its lock. On the same host the next
run sees that the holder's process is gone (or that its id now belongs to a
process started later) and takes the lock over. A lock held from another
host cannot be checked from here: the message names that host and the file
to delete once that run is known to be gone. On a cluster only the chief
takes the lock: the other workers write nothing of their own there.
"""

import atexit
import json
import os
import socket
import sys
import time
from typing import Optional

from absl import logging

LOCK = "run.lock"


def _process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started (clock ticks since boot, Linux), or None
    where /proc does not say: a reused process id starts later."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _is_pid(value) -> bool:
    """A process id a lock can name (a damaged file's -1 or 0 would make
    os.kill address a whole process group)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _alive(pid: int, started: Optional[str]) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    return started is None or _process_start(pid) in (None, started)


def _command() -> str:
    """This process's command line as typed: ``python -m train …`` rather
    than the path of the package's ``__main__.py``."""
    program = sys.argv[0] if sys.argv else "python"
    if os.path.basename(program) == "__main__.py":
        program = f"python -m {os.path.basename(os.path.dirname(program))}"
    return " ".join([program, *sys.argv[1:]])


def holder_text(holder: dict) -> str:
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
            f"{holder.get('command')}")


def read(path: str) -> dict:
    try:
        with open(path) as f:
            holder = json.load(f)
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}  # being written this very moment, or damaged


class Lock:
    """This process's hold on ``model_dir``; ``release`` (or the process's
    end, for a lock left by a kill: see the module's docstring) frees it."""

    def __init__(self, model_dir: str):
        self.path = os.path.join(model_dir, LOCK)
        self.holder = {
            "host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": _command(),
        }
        self.held = False

    def acquire(self) -> "Lock":
        """Takes the lock; a ValueError naming the holder when another live
        run has it."""
        for _ in range(3):  # a stale lock removed, then taken: once more
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._clear_if_stale()
                continue
            with os.fdopen(descriptor, "w") as f:
                json.dump(self.holder, f)
            self.held = True
            atexit.register(self.release)  # a Run built and never trained, in a longer process
            return self
        raise ValueError(f"Could not lock {os.path.dirname(self.path)!r}: {self.path} keeps reappearing.")

    def _clear_if_stale(self) -> None:
        holder = read(self.path)
        directory = os.path.dirname(self.path)
        if not holder:
            # Just created and not yet written by its holder: live.
            if time.time() - _mtime(self.path) < 10:
                raise ValueError(f"The model directory {directory!r} is being locked by another run just now; "
                                 "use another --model_dir, or wait for that run to finish.")
        elif holder.get("host") != self.holder["host"]:
            raise ValueError(
                f"The model directory {directory!r} is in use by another run ({holder_text(holder)}). Its host "
                "cannot be checked from here: if that run has ended (killed, or its machine lost), delete "
                f"{self.path} and start again; otherwise use another --model_dir."
            )
        elif _is_pid(holder.get("pid")) and _alive(holder["pid"], holder.get("pid_start")):
            raise ValueError(
                f"The model directory {directory!r} is in use by another run ({holder_text(holder)}). Wait for it "
                "to finish or stop it, or use another --model_dir."
            )
        logging.warning("Taking over %s: its holder (%s) is no longer running.", self.path,
                        holder_text(holder) if holder else "unknown")
        # Renamed away first: of two runs clearing it at once, one renames it.
        stale = f"{self.path}.stale-{os.getpid()}"
        try:
            os.rename(self.path, stale)
        except FileNotFoundError:
            return
        if read(stale) != holder:  # another run's fresh lock, taken meanwhile: put it back
            try:
                os.link(stale, self.path)
            except FileExistsError:
                pass
        os.remove(stale)

    def release(self) -> None:
        """Removes the lock if this process still holds it."""
        if self.held and read(self.path).get("pid") == self.holder["pid"] \
                and read(self.path).get("host") == self.holder["host"]:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self.held = False


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0
