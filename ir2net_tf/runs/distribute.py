"""``--strategy`` and ``--mixed_precision``: ``tf.distribute`` as it is, plus
what a cluster of workers needs to agree on (docs/distributed.md).

On a multi-worker cluster every worker runs the same collective operations
(saving weights and checkpoints reads synchronized variables, which is an
all-reduce); only the chief's files are kept. The other workers write to
``workertemp_<task id>`` folders inside the chief's (as
``tf.distribute``'s Keras guide does) and remove them. The chief's model
directory must therefore be on storage that every worker sees at the same
path, as it must anyway for a restarted worker to find the last checkpoint.
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import tensorflow as tf

from ir2net_tf.flag_domains import at_least

from ir2net_tf.config import STRATEGIES  # noqa: E402  (the setting's values, declared with it)
# How long workers wait for each other at start-up (--cluster_timeout).
DEFAULT_CLUSTER_TIMEOUT = 300
# Under SLURM each task listens on PORT_BASE + (job id mod PORT_RANGE) + its
# rank on the node, so that two jobs sharing a node do not collide.
SLURM_PORT_BASE, SLURM_PORT_RANGE = 15000, 20000


# What TensorFlow's SlurmClusterResolver reads inside an srun step.
SLURM_VARIABLES = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
# All-reduce training: one optional chief and the workers.
TASK_TYPES = {"chief", "worker"}


class ClusterError(ValueError):
    """A cluster that cannot start or went away; the message says what to do."""


def make_strategy(name: str, tpu: str = "", cluster_timeout: int = DEFAULT_CLUSTER_TIMEOUT, settings=None):
    """The ``tf.distribute`` strategy ``name``; clear errors for a cluster or
    TPU that cannot be reached.

    Args:
        name: one of ``STRATEGIES``.
        tpu: ``--tpu``.
        cluster_timeout: seconds a worker waits for all the others to start.
        settings: what every worker must have been given alike (compared
            across the cluster at start-up, see ``check_same_settings``).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        at_least(1).check(cluster_timeout, "cluster_timeout")
        resolver = cluster_resolver()
        check_port_free(resolver)
        # TensorFlow retries missing workers without end, inside C++ where
        # Python cannot interrupt it: a watchdog process ends the worker with
        # a message naming the addresses that do not answer.
        task = f"{resolver.task_type}:{resolver.task_id}"
        watchdog = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "watchdog.py"), str(os.getpid()),
             str(cluster_timeout), task, *_addresses(resolver)], stdin=subprocess.PIPE,
        )
        # Ctrl-C while TensorFlow waits in C++ (Python's handler would run only
        # after the wait): the default action ends this worker at once, and the
        # watchdog, which receives the same Ctrl-C, says what happened.
        interrupt = _default_sigint()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
            check_same_settings(strategy, settings or {})
        except tf.errors.OpError as error:  # e.g. "Could not start gRPC server"
            raise ClusterError(f"Worker {task} could not start: {_first_line(error.message)}. Check TF_CONFIG's "
                               "addresses (docs/distributed.md).") from None
        finally:
            if interrupt is not None:
                signal.signal(signal.SIGINT, interrupt)
            watchdog.stdin.close()
            watchdog.wait()
        return strategy
    if name == "tpu":
        return _tpu(tpu)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")


def _default_sigint():
    """Sets SIGINT's default action; returns the handler to restore (None
    outside the main thread, where signals cannot be set)."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_DFL)
    except ValueError:
        return None


def _first_line(text: str) -> str:
    text = str(text).strip()
    return text.splitlines()[0][:300] if text else "unknown error"


def check_port_free(resolver) -> None:
    """This worker's own address must be free to listen on: TensorFlow's
    gRPC server otherwise fails with a traceback ("Could not start gRPC
    server") or, on some systems, waits."""
    spec = resolver.cluster_spec().as_dict()
    try:
        address = spec[resolver.task_type][resolver.task_id]
    except (KeyError, IndexError, TypeError):
        return
    host, _, port = address.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        raise ClusterError(f"The address {address!r} of task {resolver.task_type}:{resolver.task_id} has no port "
                           "(host:port).") from None
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as probe:
        # As gRPC binds: a port whose last connections are only in TIME_WAIT
        # (a worker restarted after a kill) is free; a live listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ClusterError(
                    f"Port {port} of this worker's address {address} (task {resolver.task_type}:{resolver.task_id}) "
                    "is already in use by another process: stop it (an earlier worker still running?) or give "
                    "this task another port in the cluster's addresses."
                ) from None


def _tpu(tpu: str):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:  # noqa: BLE001 — metadata lookups, gRPC and "no TPU found" alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterError(
            f"Could not reach the TPU {tpu or '(auto-detected)'!r}: {reason[:200]}. --strategy tpu runs on a "
            "Cloud TPU VM (--tpu local) or with --tpu naming a TPU this machine can reach; see docs/distributed.md."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def cluster_resolver():
    """The cluster from ``TF_CONFIG``, or from SLURM's variables inside an
    ``srun`` step; errors that say which is wrong."""
    if "TF_CONFIG" in os.environ:
        check_tf_config(os.environ["TF_CONFIG"])
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if any(name in os.environ for name in SLURM_VARIABLES):
        check_slurm_variables(os.environ)
        return slurm_resolver()
    raise ClusterError(
        "--strategy multi_worker needs the cluster: set TF_CONFIG on every worker, or start the workers "
        "with srun inside a SLURM job (see docs/distributed.md)."
    )


def check_tf_config(text: str) -> dict:
    """``TF_CONFIG`` parsed; a ClusterError naming what is wrong with it."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({error}): {text[:200]!r}.") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterError('TF_CONFIG has no "cluster", e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                           '"task": {"type": "worker", "index": 0}}.')
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ClusterError('TF_CONFIG has no "task" naming this worker, e.g. "task": {"type": "worker", "index": 0}.')
    unsupported = sorted(set(cluster) - TASK_TYPES) + ([task["type"]] if task["type"] not in TASK_TYPES else [])
    if unsupported:
        raise ClusterError(
            f"TF_CONFIG names task type(s) {sorted(set(unsupported))}: parameter servers ('ps') and evaluators are "
            "not supported. --strategy multi_worker trains with all-reduce (MultiWorkerMirroredStrategy): list "
            "every machine under \"worker\" (and at most one \"chief\")."
        )
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not isinstance(task["index"], int) or not 0 <= task["index"] < len(members):
        raise ClusterError(
            f"TF_CONFIG's task {task['type']}:{task['index']} is not in its cluster {json.dumps(cluster)}; "
            "each worker's task must name one of the cluster's addresses."
        )
    return config


def check_slurm_variables(environ) -> None:
    """Inside an ``srun`` step SLURM sets all of ``SLURM_VARIABLES``; some
    but not all (a job script run without srun, a hand-made environment), or
    values of the wrong form, are named."""
    missing = [name for name in SLURM_VARIABLES if not environ.get(name)]
    if missing:
        given = [name for name in SLURM_VARIABLES if environ.get(name)]
        raise ClusterError(
            f"SLURM variables {', '.join(given)} are set but {', '.join(missing)} not: start the workers with "
            "srun inside a SLURM job (every task then has all of them), or unset them and set TF_CONFIG "
            "(docs/distributed.md)."
        )
    for name in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_JOB_ID"):
        value = environ.get(name)
        if value is not None and not value.isdigit():
            raise ClusterError(f"{name}={value!r} is not a whole number, as SLURM sets it.")
    if int(environ["SLURM_PROCID"]) >= int(environ["SLURM_STEP_NUM_TASKS"]):
        raise ClusterError(f"SLURM_PROCID={environ['SLURM_PROCID']} is not below SLURM_STEP_NUM_TASKS="
                           f"{environ['SLURM_STEP_NUM_TASKS']}.")
    if not re.fullmatch(r"\d+(\(x\d+\))?(,\d+(\(x\d+\))?)*", environ["SLURM_STEP_TASKS_PER_NODE"]):
        raise ClusterError(f"SLURM_STEP_TASKS_PER_NODE={environ['SLURM_STEP_TASKS_PER_NODE']!r} is not of SLURM's "
                           "form (e.g. 2(x3),1).")


def slurm_resolver():
    """SLURM's cluster: one task per worker, ``srun`` having started them.
    Tasks sharing a node get a GPU each (``CUDA_VISIBLE_DEVICES``); a task
    alone on its node keeps the GPUs SLURM gave it; without GPUs every task
    uses the CPU."""
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_tasks_per_node, get_num_gpus,
    )

    port = SLURM_PORT_BASE + int(os.environ.get("SLURM_JOB_ID", "0")) % SLURM_PORT_RANGE
    try:
        gpus = get_num_gpus()
    except (RuntimeError, OSError):
        gpus = 0
    tasks_per_node = max(expand_tasks_per_node(os.environ.get("SLURM_STEP_TASKS_PER_NODE", "1")))
    try:
        return tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=max(gpus, tasks_per_node), auto_set_gpu=gpus > 0 and tasks_per_node > 1,
        )
    except (RuntimeError, ValueError) as error:  # e.g. a node list scontrol cannot expand
        raise ClusterError(f"SLURM's variables do not describe a cluster: {_first_line(error)} "
                           "(SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE).") from None


def _addresses(resolver) -> list:
    spec = resolver.cluster_spec().as_dict()
    return [address for job in ("chief", "worker") for address in spec.get(job, [])]


def multi_worker(strategy) -> bool:
    return strategy.extended._in_multi_worker_mode()  # noqa: SLF001 — what tf.distribute itself asks


def input_pipelines(strategy) -> int:
    """The cluster's input pipelines: one per worker on a multi-worker
    cluster, as ``distribute_datasets_from_function`` counts them; else 1."""
    if not multi_worker(strategy):
        return 1
    return strategy.extended._num_workers  # noqa: SLF001 — its InputContext's


def is_chief(strategy) -> bool:
    """Whether this worker writes the run's files (always, but on a
    multi-worker cluster only the chief, or worker 0 when there is none)."""
    return not multi_worker(strategy) or strategy.extended.should_checkpoint


def task_name(strategy) -> str:
    if not multi_worker(strategy):
        return "local"
    return f"{strategy.cluster_resolver.task_type}:{strategy.cluster_resolver.task_id}"


def write_path(path: str, strategy, *, folder: bool = False) -> str:
    """Where this worker writes ``path``: the path itself on the chief; on
    another worker ``<folder>/workertemp_<task id>/<name>`` for a file, or
    ``<path>/workertemp_<task id>`` for a folder (as Keras' TensorBoard does).
    ``remove_temporary`` removes it."""
    if is_chief(strategy):
        return path
    temporary = f"workertemp_{strategy.cluster_resolver.task_id}"
    if folder:
        os.makedirs(os.path.join(path, temporary), exist_ok=True)
        return os.path.join(path, temporary)
    folder_path, name = os.path.split(path)
    os.makedirs(os.path.join(folder_path, temporary), exist_ok=True)
    return os.path.join(folder_path, temporary, name)


def remove_temporary(path: str, strategy, *, folder: bool = False) -> None:
    """Removes this worker's temporary folder for ``path`` (nothing on the chief)."""
    if not is_chief(strategy):
        written = write_path(path, strategy, folder=folder)
        shutil.rmtree(written if folder else os.path.dirname(written), ignore_errors=True)


def share(strategy, key: str, compute):
    """``compute()`` on the chief, its JSON value handed to every worker via
    the cluster's coordination service: one decision the whole cluster takes."""
    if not multi_worker(strategy):
        return compute()
    from tensorflow.python.eager import context

    key = f"ir2net/{key}"
    if is_chief(strategy):
        value = compute()
        context.context().set_config_key_value(key, json.dumps(value))
        return value
    try:
        return json.loads(context.context().get_config_key_value(key))
    except tf.errors.OpError:
        raise ClusterError("The chief stopped before the cluster could start (see its log); fix that and start "
                           "every worker again.") from None


def check_same_settings(strategy, settings: dict) -> None:
    """Refuses to start when the workers were given different settings (they
    would train different models, or hang in collectives that differ): each
    worker publishes its settings and compares them with every other's."""
    if not multi_worker(strategy):
        return
    from tensorflow.python.eager import context

    resolver = strategy.cluster_resolver
    mine = json.loads(json.dumps(settings))
    context.context().set_config_key_value(f"ir2net/settings/{task_name(strategy)}", json.dumps(mine))
    for job, addresses in resolver.cluster_spec().as_dict().items():
        for index in range(len(addresses)):
            other = f"{job}:{index}"
            try:
                theirs = json.loads(context.context().get_config_key_value(f"ir2net/settings/{other}"))
            except tf.errors.OpError:
                raise ClusterError(f"Worker {other} stopped before the cluster could start (see its log); fix that "
                                   "and start every worker again.") from None
            differ = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            if differ:
                details = ", ".join(f"{k}: {theirs.get(k)!r} on {other}, {mine.get(k)!r} here" for k in differ)
                raise ClusterError(f"Worker {task_name(strategy)} was started with other flags than worker {other} "
                                   f"({details}); start every worker with the same command.")


def any_worker(strategy, flag: bool) -> bool:
    """Whether ``flag`` is set on any worker (an all-reduce; every worker must
    call it at the same point)."""
    if not multi_worker(strategy):
        return flag
    return bool(_any_worker_fn(strategy)(tf.constant(1.0 if flag else 0.0)).numpy() > 0)


_ANY_WORKER = {}


def _any_worker_fn(strategy):
    if id(strategy) not in _ANY_WORKER:
        @tf.function
        def reduce(value):
            per_replica = strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", tf.identity(value)))
            return strategy.experimental_local_results(per_replica)[0]

        _ANY_WORKER[id(strategy)] = reduce
    return _ANY_WORKER[id(strategy)]


def set_mixed_precision(enabled: bool, strategy_name: str) -> None:
    """float16 compute (bfloat16 on TPU); variables and losses stay float32."""
    policy = ("mixed_bfloat16" if strategy_name == "tpu" else "mixed_float16") if enabled else "float32"
    tf.keras.mixed_precision.set_global_policy(policy)
