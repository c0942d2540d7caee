"""A training run: the dataset, the stages, checkpoints and resumption."""

import json
import os

import tensorflow as tf
from absl import logging

from ir2net_tf import config, data, zoo
from ir2net_tf.data import service
from ir2net_tf.nn import binarization
from ir2net_tf.training.schedules import make_schedule
from ir2net_tf.training.trainer import IR2Trainer, make_optimizer
from ir2net_tf.models.weights import check as check_weights, load_weights
from ir2net_tf.training.visualize import RestrictionGridLogger
from ir2net_tf.runs import artifacts, banners, callbacks, checkpoints, distribute, lock, model_dir as model_dirs
from ir2net_tf.runs import seeding, settings_check
from ir2net_tf.runs.signals import StopSignals
from ir2net_tf.runs.teacher import load_teacher

STAGES = settings_check.STAGES


def check_settings(settings: dict) -> None:
    """Errors a user can fix, before any work or file (runs/settings_check.py)."""
    settings_check.check_settings(settings)
    data.check_splits(settings["dataset"], settings.get("train_split"), settings.get("validation_split"))
    data.check_manual_download(settings["dataset"], settings.get("data_dir"), settings.get("manual_dir"))


def build_student(settings, num_classes, *, binary_weights, weights=None):
    size = settings["image_size"]
    # binarizer: None (or absent, runs from before it existed) = the model's own.
    binarizer = {"binarizer": settings["binarizer"]} if settings.get("binarizer") else {}
    return zoo.build(
        settings["model"], input_shape=(size, size, 3), num_classes=num_classes, variant=settings["variant"],
        recovery=settings["recovery"], binary_weights=binary_weights, pad_values=settings["pad_values"],
        classifier_activation=None, weights=weights, weight_clip=settings.get("weight_clip", False), **binarizer,
    )


def load_dataset(settings) -> data.Dataset:
    return data.load(
        settings["dataset"], image_size=settings["image_size"], data_dir=settings.get("data_dir"),
        manual_dir=settings.get("manual_dir"), augment=settings["augment"], seed=settings["seed"],
        train_split=settings.get("train_split"), validation_split=settings.get("validation_split"),
    )


def absolute_dataset(settings: dict) -> dict:
    """``settings`` with an image folder's path made absolute, as the run
    stores it: export and evaluate then find it from any directory."""
    name = settings["dataset"]
    if name == "digits" or not data.is_folder(name):
        return settings
    return dict(settings, dataset=os.path.abspath(os.path.expanduser(name)))


class Run:
    def __init__(self, settings, *, model_dir, overwrite=False, checkpoint_every=500, strategy="default",
                 tpu="", mixed_precision=False, jit_compile=False, verbose=1, init_weights=None,
                 restriction_shortcut=True, cluster_timeout=distribute.DEFAULT_CLUSTER_TIMEOUT, data_service=""):
        # The run options a resume may not change (runs/at_resume.py) are kept
        # with the training settings in config.json, so that a resume is judged
        # against them; init_weights as an absolute path, valid from any folder.
        options = dict(strategy=strategy, mixed_precision=mixed_precision, jit_compile=jit_compile,
                       restriction_shortcut=restriction_shortcut,
                       init_weights=os.path.abspath(os.path.expanduser(init_weights)) if init_weights else None)
        settings = dict(absolute_dataset(settings), **options)
        self.settings = settings
        self.checkpoint_every, self.jit_compile, self.verbose = checkpoint_every, jit_compile, verbose
        self.init_weights = init_weights
        self.restriction_shortcut = restriction_shortcut
        self.position = None  # (stage, epoch, step) while training: where an interrupt stops
        distribute.set_mixed_precision(mixed_precision, strategy)
        # Flags the workers must share (collectives happen at the same steps).
        # --model_dir too: each worker resumes from, and picks "best" by, the
        # chief's files, which must be the same path on every worker.
        shared = dict(settings, checkpoint_every=checkpoint_every, mixed_precision=mixed_precision,
                      jit_compile=jit_compile, init_weights=init_weights,
                      model_dir=os.path.abspath(os.path.expanduser(model_dir)))
        # The strategy first: a multi-worker one must configure TensorFlow's
        # collectives before any operation runs (the checks below build a model).
        # It writes no file, so a bad flag still leaves the directory untouched.
        self.strategy = distribute.make_strategy(strategy, tpu, cluster_timeout, settings=shared)
        check_settings(settings)
        # Dispatchers making the training batches (data/service.py): each must answer now.
        self.data_service = config.SETTINGS["data_service"].addresses.parse(data_service) if data_service else []
        self.workers = distribute.input_pipelines(self.strategy)
        if len(self.data_service) not in (0, 1, self.workers):
            raise ValueError(f"--data_service names {len(self.data_service)} dispatchers for {self.workers} "
                             "worker(s): name one that all share, or one per worker.")
        service.check_reachable(self.data_service)
        seeding.make_repeatable(settings["seed"], deterministic_ops=strategy == "default")
        self.chief = distribute.is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if settings["batch_size"] % replicas:
            raise ValueError(f"--batch_size {settings['batch_size']} does not split evenly over the {replicas} "
                             f"replicas; choose a multiple of {replicas} (it is the global batch).")
        self.model_dir = model_dirs.prepare(model_dir)
        # One run per directory (runs/lock.py): the chief holds it for the cluster.
        self.lock = lock.Lock(self.model_dir)
        try:
            if self.chief:
                self.lock.acquire()
            # The chief checks the directory; the others take its word. Nothing is
            # deleted until the data has loaded (model_dir.py).
            self.saved, reset = distribute.share(
                self.strategy, "saved_config", lambda: model_dirs.check_run(self.model_dir, settings, overwrite))
            self.dataset = load_dataset(settings)
            if self.workers > 1:
                for line in self.dataset.describe_reading(self.workers, settings["batch_size"]):
                    logging.info("%s", line)
            if self.data_service:
                logging.info("Training batches are made by the tf.data service (dispatcher %s; one per worker "
                             "in worker order when several), in order; validation batches here.",
                             ", ".join(self.data_service))
            if init_weights:
                # Before any file: a stage-1 file that does not fit stage 2
                # (another model, head or --binarizer) is refused now.
                check_weights(build_student(settings, self.dataset.num_classes, binary_weights=True), init_weights)
                seeding.make_repeatable(settings["seed"], deterministic_ops=strategy == "default")  # as before it
            if reset and self.chief:
                model_dirs.remove_run(self.model_dir)
        except BaseException:
            self.lock.release()
            raise
        self.completed = list(self.saved.get("stages_completed", []))

    @classmethod
    def from_config(cls, config) -> "Run":
        """The run a ``TrainConfig`` describes (ir2net_tf/config.py), its
        settings and options checked before any file is written."""
        settings = config.settings()
        settings_check.check_options(mode="train", given={}, init_weights=config.init_weights, weights=None,
                                 stage=settings["stage"])
        logging.info("Training settings: %s", json.dumps(settings, sort_keys=True))
        return cls(settings, **config.run_options())

    def path(self, name):
        return os.path.join(self.model_dir, name)

    def _write_config(self, binary_weights):
        if self.chief:
            config = model_dirs.model_config(self.settings, self.dataset.num_classes, binary_weights, self.completed)
            artifacts.write_json(self.path(artifacts.CONFIG), config)

    def train(self):
        """Trains the stages not yet complete; the directory's lock is freed at the end."""
        try:
            with service.Watch(self.data_service):
                return self._train()
        finally:
            self.lock.release()

    def _train(self):
        stages = ["1", "2"] if self.settings["stage"] == "both" else [self.settings["stage"]]
        for stage in stages:
            # best/final.weights.h5 change only when a stage ends: until then
            # they (and binary_weights) are the last completed stage's.
            self._write_config(binary_weights=(self.completed or [stage])[-1] == "2")
            if stage in self.completed:
                logging.info("Stage %s is already complete in %s; skipping it.", stage, self.model_dir)
            else:
                self._banner(banners.stage_start(
                    stage, self.settings, self.steps_per_epoch(), of=len(stages),
                    init=stage == "2" and self._stage1_weights() and os.path.basename(self._stage1_weights())))
                self.train_stage(stage)
                self.completed.append(stage)
                self._banner(banners.stage_end(stage, artifacts.read_metrics(self.path(artifacts.METRICS))))
            self._finish_stage(stage)
        if self.chief:
            artifacts.plot_curves(self.path(artifacts.METRICS), self.path(artifacts.CURVES))
        return artifacts.read_metrics(self.path(artifacts.METRICS))

    def _banner(self, line):
        if self.chief:
            print(line, flush=True)

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

    def steps_per_epoch(self, workers=None) -> int:
        """The epoch's steps on ``workers`` workers (default: this cluster's):
        the training split's batches, at most --steps_per_epoch."""
        steps = self.dataset.steps_per_epoch(self.settings["batch_size"], workers or self.workers)
        return min(steps, self.settings.get("steps_per_epoch") or steps)

    def _check_workers(self, stage, stored, epoch, step):
        """A resume on another number of workers: at an epoch's end, or where
        the epoch's order does not depend on it; refused mid-epoch otherwise
        (the examples left would not be the ones the stopped epoch had left)."""
        ds = self.dataset
        if stored == self.workers or step == 0 or ds.reading_order(stored) == ds.reading_order(self.workers):
            return
        if step >= self.steps_per_epoch(stored):
            return  # only the epoch's end is left
        plural = "s" if stored != 1 else ""
        raise ValueError(
            f"This run stopped in the middle of stage {stage}, epoch {epoch + 1} (step {step}) on {stored} "
            f"worker{plural}; {self.workers} workers would read that epoch in another order (it depends on the "
            "worker count when each worker reads its own files of the training split), so some examples would be "
            f"seen twice and others skipped: resume it on {stored} worker{plural}. Another number of workers can "
            "take over at an epoch's end."
        )

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
        steps = self.steps_per_epoch()
        with self.strategy.scope():
            student = build_student(s, ds.num_classes, binary_weights=stage == "2")
            teacher, teacher_logits = load_teacher(s["teacher"], student.input_shape[1:], ds.num_classes)
            trainer = IR2Trainer(
                student, restriction_lambda=s["restriction_lambda"], teacher=teacher,
                teacher_outputs_logits=teacher_logits, weight_decay=self._weight_decay(stage),
                weight_decay_scope=s["weight_decay_scope"], normalization=s["normalization"],
                restriction_shortcut=self.restriction_shortcut,
            )
            schedule = make_schedule(
                s.get("lr_schedule", "cosine"), s["learning_rate"], steps * s["epochs"],
                warmup_steps=round(steps * s.get("warmup_epochs", 0)), warmup_learning_rate=s.get("warmup_learning_rate"),
            )
            optimizer = make_optimizer(s["optimizer"], schedule, s["momentum"])
            # Under mixed_float16, compile wraps the optimizer in a loss-scale
            # optimizer; the checkpoint keeps the inner one's state.
            trainer.compile(optimizer=optimizer, jit_compile=self.jit_compile)
            optimizer.build(student.trainable_variables)
            epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # The last finished epoch's metrics row. Outside the strategy: a plain
        # host variable (float64, which TPUs do not hold), equal on every worker.
        with tf.device("CPU:0"):
            last_row = tf.Variable(tf.fill([len(artifacts.ROW_VALUES)], tf.constant(float("nan"), tf.float64)),
                                   trainable=False, name="last_row")
            # The workers the epoch's position counts for (the order of a file-sharded
            # epoch depends on it); checkpoints from before it existed: one
            # process's order, which every worker count reproduced.
            workers = tf.Variable(1, dtype=tf.int64, trainable=False, name="workers")
        parts = dict(model=student, optimizer=optimizer, epoch=epoch, step=step, last_row=last_row,
                     workers=workers)
        checkpoint = tf.train.Checkpoint(**parts)
        directory = self.path(os.path.join(artifacts.CHECKPOINTS, f"stage{stage}"))
        # Every worker saves (a collective); only the chief's are kept, and
        # every worker resumes from the chief's.
        manager = tf.train.CheckpointManager(
            checkpoint, distribute.write_path(directory, self.strategy, folder=True), max_to_keep=2)
        latest = distribute.share(self.strategy, f"restore/stage{stage}", lambda: checkpoints.newest_intact(directory))
        if latest:
            checkpoints.restore(latest, parts)
            logging.info(
                "Resuming stage %s from %s: epoch %d, step %d (optimizer step %d).", stage,
                latest, int(epoch.numpy()) + 1, int(step.numpy()), int(optimizer.iterations.numpy()),
            )
            self._check_workers(stage, int(workers.numpy()), int(epoch.numpy()), int(step.numpy()))
        elif stage == "2":
            init = self._stage1_weights()
            if init:
                logging.info("Stage 2 starts from stage-1 weights %s.", init)
                load_weights(student, init)  # all or nothing
            elif s["stage"] == "2" and s["recipe"] == "imagenet":
                logging.warning("Stage 2 without stage-1 weights: training binary weights from scratch.")
        workers.assign(self.workers)
        logs = self.path(os.path.join(artifacts.LOGS, f"stage{stage}"))
        restriction_logs = os.path.join(logs, "restriction")
        # Where the other workers write: removed after each use, and here in
        # case a previous process was killed before it could.
        temporary = [(directory, True), (self.path(artifacts.stage_weights(stage, "best")), False),
                     (restriction_logs, True), (logs, True)]
        try:
            with StopSignals() as signals:
                self._fit_stage(stage, trainer, student, schedule, optimizer, manager, epoch, step, last_row,
                                signals, directory, logs, restriction_logs)
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

    def _fit_stage(self, stage, trainer, student, schedule, optimizer, manager, epoch, step, last_row, signals,
                   directory, logs, restriction_logs):
        """The stage's epochs, one ``fit`` each, from the restored position."""
        s, ds, strategy = self.settings, self.dataset, self.strategy
        state = callbacks.RunState(
            stage=stage, manager=manager, epoch=epoch, step=step, student=student, model_dir=self.model_dir,
            every=self.checkpoint_every, schedule=schedule, optimizer=optimizer, strategy=strategy,
            signals=signals, checkpoint_dir=directory, steps=self.steps_per_epoch(), last_row=last_row,
        )
        # Resumed at an epoch's end: its files may not have been written yet.
        state.publish()
        extra = [callbacks.Progress(s["epochs"])] if self.verbose and self.chief else []
        if binarization.uses_irnet(student):  # IR-Net's EDE temperature, set at every epoch start
            extra.append(binarization.EDESchedule(student, s["epochs"]))
        # Every worker runs these callbacks (the grid's forward pass reads
        # synchronized variables); the others' files go to temporary folders.
        extra.append(tf.keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0))
        validation_steps = None
        if ds.file_sharded(self.workers, evaluation=True):
            # Each worker evaluates its own files, padded to the same steps with
            # weight-0 examples; the metrics' totals and counts are summed over
            # the workers (the mean over every example).
            batch = s["batch_size"]
            evaluation = strategy.distribute_datasets_from_function(lambda context: ds.evaluation(
                batch, shards=context.num_input_pipelines, shard=context.input_pipeline_id,
                local_batch_size=context.get_per_replica_batch_size(batch)))
            validation_steps = ds.evaluation_steps(batch, self.workers)
        elif distribute.multi_worker(strategy):
            evaluation = ds.evaluation(s["batch_size"])
            # Each worker evaluates its share of the batches; the metrics' totals and
            # counts are summed over the workers (the mean over every example).
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            evaluation = evaluation.with_options(options)
        else:
            evaluation = ds.evaluation(s["batch_size"])
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
            if skip >= self.steps_per_epoch():
                # A checkpoint of an epoch's last step (earlier versions wrote
                # them): only the epoch's end is left to do.
                self._end_epoch_without_steps(trainer, state, evaluation, current, validation_steps)
                continue
            try:
                trainer.fit(
                    self._train_input(current, skip), initial_epoch=current, epochs=current + 1,
                    steps_per_epoch=self.steps_per_epoch() - skip, validation_data=evaluation,
                    validation_steps=validation_steps, callbacks=[state, *extra], verbose=0,
                )
            except tf.errors.InvalidArgumentError as error:
                if service.ORDER_MARK in str(error):
                    raise ValueError(service.order_error(", ".join(self.data_service))) from None
                raise
            if state.nan_at is not None:
                kept = manager.latest_checkpoint or "none saved yet"
                raise callbacks.NaNLoss(
                    f"The training loss became NaN in stage {stage}, epoch {state.nan_at[0] + 1}, step "
                    f"{state.nan_at[1]}. The run stopped; the last good checkpoint is kept ({kept}). Check the "
                    "data, or start afresh with a lower --learning_rate: another --model_dir, or --overwrite to "
                    "replace this run (a run's learning rate is fixed)."
                )
            if state.stop_requested:  # at the epoch's last step: its end is saved
                raise state.stopped()

    def _end_epoch_without_steps(self, trainer, state, evaluation, epoch, steps=None):
        """The end of epoch ``epoch`` (validation, checkpoint, files) for a run
        whose checkpoint already holds all of the epoch's steps; the training
        columns come from the epoch's row if the killed run had written it."""
        state.set_model(trainer)
        results = trainer.evaluate(evaluation, steps=steps, return_dict=True, verbose=0, callbacks=[state])
        rows = artifacts.read_metrics(self.path(artifacts.METRICS))
        row = next((r for r in rows if (r["stage"], r["epoch"]) == (state.stage, str(epoch + 1))), {})
        training = {k: float(row[k]) for k in ("loss", "accuracy", "top5", "kept") if row.get(k)}
        state.on_epoch_end(epoch, {**training, **{f"val_{name}": value for name, value in results.items()}})

    def _train_input(self, epoch, skip):
        """Epoch ``epoch``'s training batches from global batch ``skip`` on; on a
        cluster each worker's share (every example at most once across the
        workers: its own files, or its slices of the order one process would
        see, data.Dataset.train)."""
        ds, batch = self.dataset, self.settings["batch_size"]
        if not distribute.multi_worker(self.strategy):
            return self._made_where_asked(ds.train(epoch, batch, skip_batches=skip), 0)
        return self.strategy.distribute_datasets_from_function(lambda context: self._made_where_asked(ds.train(
            epoch, batch, skip_batches=skip, shards=context.num_input_pipelines, shard=context.input_pipeline_id,
            local_batch_size=context.get_per_replica_batch_size(batch),
        ), context.input_pipeline_id))

    def _service_address(self, worker: int) -> str:
        """The dispatcher of worker ``worker``'s batches: its own where
        --data_service names one per worker, else the one they share."""
        return self.data_service[worker % len(self.data_service)]

    def _made_where_asked(self, pipeline, worker: int):
        """``pipeline`` made here, or by the tf.data service (--data_service)."""
        return service.served(pipeline, self._service_address(worker)) if self.data_service else pipeline

    def where(self) -> str:
        """Where training is, for an interrupted run's message."""
        if self.position is None:
            return "before training started"
        stage, epoch, step = self.position()
        return f"in stage {stage}, epoch {epoch}, step {step}"
