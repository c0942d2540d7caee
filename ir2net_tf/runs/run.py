"""A training run: the dataset, the stages, checkpoints and resumption."""

import os

import tensorflow as tf
from absl import logging

from ir2net_tf import data, zoo
from ir2net_tf.training import IR2Trainer, cosine_schedule, make_optimizer
from ir2net_tf.visualize import RestrictionGridLogger
from ir2net_tf.runs import artifacts, callbacks, checkpoints, distribute, model_dir as model_dirs
from ir2net_tf.runs.signals import StopSignals
from ir2net_tf.runs.teacher import load_teacher

STAGES = ("1", "2", "both")


def check_settings(settings: dict) -> None:
    """Errors a user can fix, before any work: unknown model/variant/stage."""
    info = zoo.get_model_info(settings["model"])
    if settings["variant"] not in info.variants:
        raise ValueError(
            f"Unknown variant {settings['variant']!r} for {info.name}; choose one of {list(info.variants)}."
        )
    if settings["stage"] not in STAGES:
        raise ValueError(f"Unknown stage {settings['stage']!r}; choose one of {STAGES}.")


def build_student(settings, num_classes, *, binary_weights, weights=None):
    size = settings["image_size"]
    return zoo.build(
        settings["model"], input_shape=(size, size, 3), num_classes=num_classes, variant=settings["variant"],
        recovery=settings["recovery"], binary_weights=binary_weights, pad_values=settings["pad_values"],
        classifier_activation=None, weights=weights,
    )


def load_dataset(settings) -> data.Dataset:
    return data.load(
        settings["dataset"], image_size=settings["image_size"], data_dir=settings.get("data_dir"),
        manual_dir=settings.get("manual_dir"), augment=settings["augment"], seed=settings["seed"],
    )


class Run:
    def __init__(self, settings, *, model_dir, overwrite=False, checkpoint_every=500, strategy="default",
                 tpu="", mixed_precision=False, jit_compile=False, verbose=1, init_weights=None,
                 cluster_timeout=distribute.DEFAULT_CLUSTER_TIMEOUT):
        check_settings(settings)
        self.settings = settings
        self.checkpoint_every, self.jit_compile, self.verbose = checkpoint_every, jit_compile, verbose
        self.init_weights = init_weights
        self.position = None  # (stage, epoch, step) while training: where an interrupt stops
        distribute.set_mixed_precision(mixed_precision, strategy)
        # Flags the workers must share (collectives happen at the same steps).
        shared = dict(settings, checkpoint_every=checkpoint_every, mixed_precision=mixed_precision,
                      jit_compile=jit_compile, init_weights=init_weights)
        self.strategy = distribute.make_strategy(strategy, tpu, cluster_timeout, settings=shared)
        self.chief = distribute.is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if settings["batch_size"] % replicas:
            raise ValueError(f"--batch_size {settings['batch_size']} does not split evenly over the {replicas} "
                             f"replicas; choose a multiple of {replicas} (it is the global batch).")
        self.model_dir = model_dirs.prepare(model_dir)
        # The chief checks (or resets) the directory; the others take its word.
        self.saved = distribute.share(
            self.strategy, "saved_config", lambda: model_dirs.check_or_reset(self.model_dir, settings, overwrite))
        self.dataset = load_dataset(settings)
        self.completed = list(self.saved.get("stages_completed", []))

    def path(self, name):
        return os.path.join(self.model_dir, name)

    def _write_config(self, binary_weights):
        if self.chief:
            config = model_dirs.model_config(self.settings, self.dataset.num_classes, binary_weights, self.completed)
            artifacts.write_json(self.path(artifacts.CONFIG), config)

    def train(self):
        stages = ["1", "2"] if self.settings["stage"] == "both" else [self.settings["stage"]]
        for stage in stages:
            # best/final.weights.h5 change only when a stage ends: until then
            # they (and binary_weights) are the last completed stage's.
            self._write_config(binary_weights=(self.completed or [stage])[-1] == "2")
            if stage in self.completed:
                logging.info("Stage %s is already complete in %s; skipping it.", stage, self.model_dir)
            else:
                self.train_stage(stage)
                self.completed.append(stage)
            self._finish_stage(stage)
        if self.chief:
            artifacts.plot_curves(self.path(artifacts.METRICS), self.path(artifacts.CURVES))
        return artifacts.read_metrics(self.path(artifacts.METRICS))

    def _finish_stage(self, stage):
        """The final stage's weights become best/final.weights.h5."""
        if not self.chief:
            return
        for kind, name in (("best", artifacts.BEST_WEIGHTS), ("final", artifacts.FINAL_WEIGHTS)):
            source = self.path(artifacts.stage_weights(stage, kind))
            if os.path.exists(source):
                with open(source, "rb") as f:
                    artifacts.atomic_write(self.path(name), f.read())
        self._write_config(binary_weights=stage == "2")

    def _stage1_weights(self):
        if self.init_weights:
            return self.init_weights
        path = self.path(artifacts.stage_weights("1", "final"))
        return path if os.path.exists(path) else None

    def _weight_decay(self, stage):
        decay = self.settings["weight_decay"]
        if stage == "2" and self.settings.get("stage2_weight_decay") is not None:
            decay = self.settings["stage2_weight_decay"]
        return decay

    def train_stage(self, stage):
        s, ds = self.settings, self.dataset
        steps = ds.steps_per_epoch(s["batch_size"])
        with self.strategy.scope():
            student = build_student(s, ds.num_classes, binary_weights=stage == "2")
            teacher, teacher_logits = load_teacher(s["teacher"], student.input_shape[1:], ds.num_classes)
            trainer = IR2Trainer(
                student, restriction_lambda=s["restriction_lambda"], teacher=teacher,
                teacher_outputs_logits=teacher_logits, weight_decay=self._weight_decay(stage),
                weight_decay_scope=s["weight_decay_scope"], normalization=s["normalization"],
            )
            schedule = cosine_schedule(s["learning_rate"], steps * s["epochs"])
            optimizer = make_optimizer(s["optimizer"], schedule, s["momentum"])
            # Under mixed_float16, compile wraps the optimizer in a loss-scale
            # optimizer; the checkpoint keeps the inner one's state.
            trainer.compile(optimizer=optimizer, jit_compile=self.jit_compile)
            optimizer.build(student.trainable_variables)
            epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        checkpoint = tf.train.Checkpoint(model=student, optimizer=optimizer, epoch=epoch, step=step)
        directory = self.path(os.path.join(artifacts.CHECKPOINTS, f"stage{stage}"))
        # Every worker saves (a collective); only the chief's are kept, and
        # every worker resumes from the chief's.
        manager = tf.train.CheckpointManager(
            checkpoint, distribute.write_path(directory, self.strategy, folder=True), max_to_keep=2)
        latest = distribute.share(self.strategy, f"restore/stage{stage}", lambda: checkpoints.newest_intact(directory))
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info(
                "Resuming stage %s from %s: epoch %d, step %d (optimizer step %d).", stage,
                latest, int(epoch.numpy()) + 1, int(step.numpy()), int(optimizer.iterations.numpy()),
            )
        elif stage == "2":
            init = self._stage1_weights()
            if init:
                logging.info("Stage 2 starts from stage-1 weights %s.", init)
                student.load_weights(init)
            elif s["stage"] == "2" and s["recipe"] == "imagenet":
                logging.warning("Stage 2 without stage-1 weights: training binary weights from scratch.")
        logs = self.path(os.path.join(artifacts.LOGS, f"stage{stage}"))
        restriction_logs = os.path.join(logs, "restriction")
        # Where the other workers write: removed after each use, and here in
        # case a previous process was killed before it could.
        temporary = [(directory, True), (self.path(artifacts.stage_weights(stage, "best")), False),
                     (restriction_logs, True), (logs, True)]
        try:
            with StopSignals() as signals:
                self._fit_stage(stage, trainer, student, schedule, optimizer, manager, epoch, step, signals,
                                directory, logs, restriction_logs)
        except tf.errors.OpError as error:
            if not distribute.multi_worker(self.strategy):
                raise
            raise distribute.ClusterError(
                f"Worker {distribute.task_name(self.strategy)} lost the cluster in stage {stage}, epoch "
                f"{int(epoch.numpy()) + 1}, step {int(step.numpy())} ({type(error).__name__}: "
                f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}). Start every worker "
                "again with the same command to resume from the last checkpoint."
            ) from None
        finally:
            self.position = None
            for path, folder in temporary:
                distribute.remove_temporary(path, self.strategy, folder=folder)

    def _fit_stage(self, stage, trainer, student, schedule, optimizer, manager, epoch, step, signals, directory,
                   logs, restriction_logs):
        """The stage's epochs, one ``fit`` each, from the restored position."""
        s, ds, strategy = self.settings, self.dataset, self.strategy
        state = callbacks.RunState(
            stage=stage, manager=manager, epoch=epoch, step=step, student=student, model_dir=self.model_dir,
            every=self.checkpoint_every, schedule=schedule, optimizer=optimizer, strategy=strategy,
            signals=signals, checkpoint_dir=directory,
        )
        extra = [callbacks.Progress(s["epochs"])] if self.verbose and self.chief else []
        # Every worker runs these callbacks (the grid's forward pass reads
        # synchronized variables); the others' files go to temporary folders.
        extra.append(tf.keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0))
        evaluation = ds.evaluation(s["batch_size"])
        if distribute.multi_worker(strategy):
            # Each worker evaluates its share of the batches; the metrics are summed.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            evaluation = evaluation.with_options(options)
        if s["restriction_lambda"] > 0:
            # What restriction erases from a fixed batch, every tenth of the stage.
            fixed = next(iter(ds.evaluation(4).take(1)))[0]
            extra.append(RestrictionGridLogger(
                student, fixed.numpy(), distribute.write_path(restriction_logs, strategy, folder=True),
                every=max(1, s["epochs"] // 10), lam=s["restriction_lambda"], normalization=s["normalization"],
                initial_epoch=int(epoch.numpy()),
            ))
        while int(epoch.numpy()) < s["epochs"]:
            current, skip = int(epoch.numpy()), int(step.numpy())
            self.position = state.position
            trainer.fit(
                self._train_input(current, skip), initial_epoch=current, epochs=current + 1,
                steps_per_epoch=ds.steps_per_epoch(s["batch_size"]) - skip,
                validation_data=evaluation, callbacks=[state, *extra], verbose=0,
            )
            if state.nan_at is not None:
                kept = manager.latest_checkpoint or "none saved yet"
                raise callbacks.NaNLoss(
                    f"The training loss became NaN in stage {stage}, epoch {state.nan_at[0] + 1}, step "
                    f"{state.nan_at[1]}. The run stopped; the last good checkpoint is kept ({kept}). Lower "
                    "--learning_rate (or check the data), then start again with the same flags to resume."
                )


    def _train_input(self, epoch, skip):
        """Epoch ``epoch``'s training batches from global batch ``skip`` on; on a
        cluster each worker's share (every example once across the workers,
        in the order one process would see them)."""
        ds, batch = self.dataset, self.settings["batch_size"]
        if not distribute.multi_worker(self.strategy):
            return ds.train(epoch, batch, skip_batches=skip)
        return self.strategy.distribute_datasets_from_function(lambda context: ds.train(
            epoch, batch, skip_batches=skip, shards=context.num_input_pipelines, shard=context.input_pipeline_id,
            local_batch_size=context.get_per_replica_batch_size(batch),
        ))

    def where(self) -> str:
        """Where training is, for an interrupted run's message."""
        if self.position is None:
            return "before training started"
        stage, epoch, step = self.position()
        return f"in stage {stage}, epoch {epoch}, step {step}"


def evaluate(model_dir: str, *, weights=None, data_dir=None, batch_size=None, verbose=1) -> dict:
    """Top-1 / top-5 of a run's saved weights on its held-out split."""
    model_dir = os.path.abspath(os.path.expanduser(model_dir))
    config_path = os.path.join(model_dir, artifacts.CONFIG)
    if not os.path.exists(config_path):
        raise ValueError(f"{model_dir!r} holds no {artifacts.CONFIG}: train into it first, or pass the run's --model_dir.")
    config = artifacts.read_json(config_path)
    settings = dict(config["training"], data_dir=data_dir or config["training"].get("data_dir"))
    weights = weights or os.path.join(model_dir, config["weights"]["best"])
    if not os.path.exists(weights):
        raise ValueError(f"No weights at {weights!r}; the run has not finished an epoch yet.")
    dataset = load_dataset(settings)
    student = build_student(settings, config["num_classes"], binary_weights=config["binary_weights"], weights=weights)
    trainer = IR2Trainer(student, restriction_lambda=0.0)
    trainer.compile()
    results = trainer.evaluate(dataset.evaluation(batch_size or settings["batch_size"]), verbose=verbose, return_dict=True)
    return {"top1": results["accuracy"], "top5": results.get("top5"), "loss": results["loss"], "weights": weights}
