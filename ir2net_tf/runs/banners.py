"""What a run prints where each stage starts and ends, so that a log of
``--stage both`` (one epoch each in a smoke test) shows where stage 1 ends
and stage 2 begins, and what each trains."""

# What each stage trains (docs/method.md: the two-step training).
WHAT = {
    "1": "real-valued weights, binary activations",
    "2": "binary weights and binary activations",
}


def _plural(count, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def stage_start(stage: str, settings: dict, steps_per_epoch: int, *, of: int, init=None) -> str:
    """The banner before stage ``stage`` (one of ``of`` stages this command trains)."""
    where = f"Stage {stage}" + (f" ({'1st' if stage == '1' else '2nd'} of 2)" if of == 2 else "")
    start = f", from {init}" if init else ""
    return (f"=== {where}: {settings['model']} with {WHAT[stage]}{start}; {_plural(settings['epochs'], 'epoch')} "
            f"of {_plural(steps_per_epoch, 'step')} (batch {settings['batch_size']}) on {settings['dataset']} ===")


def stage_end(stage: str, rows: list) -> str:
    """The one-line summary after stage ``stage``, from its metrics.csv rows."""
    rows = [r for r in rows if r["stage"] == stage]
    if not rows:
        return f"=== Stage {stage} done ==="
    last = rows[-1]
    best = max(float(r["val_accuracy"]) for r in rows)
    seconds = sum(float(r["seconds"] or 0) for r in rows)
    # kept is blank where restriction is off (λ 0, the IR-Net models).
    kept = f"pixels kept {float(last['kept']):.4f}" if last.get("kept") else "restriction off"
    return (f"=== Stage {stage} done: {_plural(len(rows), 'epoch')} in {seconds:.0f} s; held-out top-1 "
            f"{100 * float(last['val_accuracy']):.2f} % (best {100 * best:.2f} %), train loss "
            f"{float(last['loss']):.3f}, {kept} ===")
