"""Training batches made on other machines by tf.data service
(``--data_service``), and the server that makes them (``python -m zoo
data-service``).

A trainer sends its own training pipeline (``Dataset.train``: its order, its
share of the epoch, the batches a resumed run skips) to a dispatcher, whose
worker runs it and streams the batches back. Nothing about the batches
changes, only where they are made: the run is the one it would be without
the service, bit for bit, and a mid-epoch resume stays exact.

That holds because each job is read from **one service worker, in order**
(``ShardingPolicy.OFF``). Behind a dispatcher with several workers, every
worker would make the whole job (each batch arriving once per worker), and
with any sharding policy the batches would arrive in the order the workers
finish them, which a resume counting consumed batches cannot reproduce. So
each dispatcher serves with one worker (``serve`` starts exactly that; one
worker uses every core of its machine), a cluster's trainers share one or
name one each, and every batch carries its position: a batch out of order
(a second worker joined) stops the run with a message instead of training
on repeats.
"""

import os
import signal
import socket
import sys
import threading
import time
from typing import List

import tensorflow as tf

from ir2net_tf.addresses import SCHEME

AUTOTUNE = tf.data.AUTOTUNE
# Marks the order check's failure in TensorFlow's error text.
ORDER_MARK = "ir2net-data-service-order"
DEFAULT_PORT = 5050
# How long a dispatcher may not answer before the run stops (seconds): the
# client would otherwise wait for it forever, without a word after a few
# warnings.
PATIENCE = 60.0


def order_error(address: str) -> str:
    return (f"A training batch from the tf.data service at {address} came out of order: its dispatcher has more "
            "than one worker, and each would make the whole epoch (every batch seen several times). Serve each "
            "dispatcher with one worker (`python -m zoo data-service` starts a dispatcher with its one worker; "
            "one per machine), or drop --data_service. The checkpoints saved are kept; the same command resumes.")


def check_reachable(addresses: List[str], timeout: float = 10.0) -> None:
    """Each dispatcher accepts a connection, or a ValueError naming it and how
    to start one: tf.data service itself would wait for it without a word."""
    for address in addresses:
        if not _answers(address, timeout):
            host, _, port = address[len(SCHEME):].rpartition(":")
            raise ValueError(
                f"No tf.data service dispatcher answers at {host}:{port} (--data_service). Start one on that "
                f"machine with `python -m zoo data-service --port {port}`, check the address and firewall, or "
                "drop --data_service to make the batches here."
            )


def _answers(address: str, timeout: float) -> bool:
    host, _, port = address[len(SCHEME):].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return True
    except OSError:
        return False


class Watch:
    """While training (a ``with`` block): every ``every`` seconds, whether
    each dispatcher still answers; one silent for ``patience`` seconds ends
    the process with a line saying so (exit 1), as a kill would: the
    checkpoints saved are kept and the same command resumes. (The training
    thread waits inside TensorFlow for the next batch and cannot be
    interrupted; this thread can end the process.)"""

    def __init__(self, addresses: List[str], patience: float = PATIENCE, every: float = 5.0):
        self.addresses, self.patience, self.every = addresses, patience, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="data-service-watch", daemon=True)

    def __enter__(self):
        if self.addresses:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        return False

    def _watch(self):
        silent_since = {}
        while not self._done.wait(self.every):
            for address in self.addresses:
                if _answers(address, timeout=min(self.every, 5.0)):
                    silent_since.pop(address, None)
                    continue
                since = silent_since.setdefault(address, time.monotonic())
                if time.monotonic() - since >= self.patience and not self._done.is_set():
                    port = address.rpartition(":")[2]
                    print(f"error: The tf.data service dispatcher at {address[len(SCHEME):]} has not answered for "
                          f"{self.patience:.0f} s, so no training batch can come: the run stops here, its "
                          "checkpoints kept. Start the service again on that machine (`python -m zoo data-service "
                          f"--port {port}`) and run the same command to resume, or resume without --data_service.",
                          file=sys.stderr, flush=True)
                    os._exit(1)


def served(pipeline: tf.data.Dataset, address: str) -> tf.data.Dataset:
    """``pipeline``'s batches, made by the dispatcher at ``address``'s worker
    and checked to arrive in order (``ORDER_MARK`` in the error otherwise)."""
    numbered = pipeline.enumerate().apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.OFF, service=address))

    def in_order(expected, element):
        position, batch = element
        tf.debugging.assert_equal(position, expected, message=ORDER_MARK)
        return expected + 1, batch

    return numbered.scan(tf.constant(0, tf.int64), in_order).prefetch(AUTOTUNE)


def serve(port: int = DEFAULT_PORT, worker_port: int = 0, host: str = "") -> None:
    """A dispatcher on ``port`` and its one worker on ``worker_port`` (0: any
    free port), both on this machine, until SIGINT or SIGTERM. ``host``: the
    name trainers reach this machine by (default: its host name); the
    dispatcher hands it to them as the worker's address."""
    service = tf.data.experimental.service
    host = host or socket.gethostname()
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=port))
    worker = service.WorkerServer(service.WorkerConfig(
        dispatcher_address=f"localhost:{port}", port=worker_port, worker_address=f"{host}:%port%"))
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    address = f"{host}:{port}"
    print(f"tf.data service: dispatcher at {address} with one worker. Train with --data_service={address}; "
          "Ctrl-C stops it.", flush=True)
    while not stop.wait(1.0):
        pass
    worker.stop()
    dispatcher.stop()
