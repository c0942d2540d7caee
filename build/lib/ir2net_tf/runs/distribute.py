"""``--strategy`` and ``--mixed_precision``: ``tf.distribute`` as it is."""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = ""):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable describing "
                "the cluster on every worker (see tf.distribute.MultiWorkerMirroredStrategy)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")


def is_chief(strategy) -> bool:
    """Whether this worker writes the run's files (always, but on a
    multi-worker cluster only the chief, or worker 0 when there is none)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {})
    has_chief = "chief" in cluster.get("cluster", {})
    return task.get("type") == "chief" or (not has_chief and task.get("index", 0) == 0)


def set_mixed_precision(enabled: bool, strategy_name: str) -> None:
    """float16 compute (bfloat16 on TPU); variables and losses stay float32."""
    policy = ("mixed_bfloat16" if strategy_name == "tpu" else "mixed_float16") if enabled else "float32"
    tf.keras.mixed_precision.set_global_policy(policy)
