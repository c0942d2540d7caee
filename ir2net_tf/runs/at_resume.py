"""Which training settings a resumed run may change, declared once per setting.

Every ``python -m train`` flag has one ``Rule``, declared with its field in
``ir2net_tf/config.py``: ``free`` (how to run: verbosity, where the data or
the TPU is, how often to save) or ``fixed`` (anything that changes the
model, the data, the optimizer's state or the numerics), each with the
reason. ``model_dir.check_run`` compares a run
directory's ``config.json`` with the new command by these rules and refuses
a changed fixed setting in one line naming it (old → new) and the flags that
resume it; ``runs/cli.py`` appends the rule to each flag's ``--help`` and
refuses to define a flag without one; ``tests/test_resume_settings.py``
changes every setting in turn.

A setting missing from an older ``config.json`` (written before the setting
existed) counts as its field's ``missing`` value: the value runs had before it could be
chosen, so an upgrade resumes every existing run.

The fixed settings that are options of ``run.Run`` rather than training
settings (``RUN_OPTIONS``) are stored with the training settings in
``config.json`` so that a resume can be judged against them.
"""

import dataclasses
import shlex
from typing import Any, Dict, List, Optional, Tuple

from ir2net_tf import config


@dataclasses.dataclass(frozen=True)
class Rule:
    may_change: bool
    reason: str
    default: Any = None  # a config.json without the key: this value


# Each setting's rule, from its field in ir2net_tf/config.py.
RULES: Dict[str, Rule] = {n: Rule(s.may_change, s.reason, s.missing) for n, s in config.SETTINGS.items()}
# The flags of `python -m train --mode evaluate` (not settings of a run).
RULES.update(
    mode=Rule(True, "train, or evaluate the run's weights"),
    weights=Rule(True, "--mode evaluate only (training refuses it)"),
    padding=Rule(True, "--mode evaluate only (training refuses it)"),
)
# The fixed options of how to run (run.Run keyword arguments, not recipe
# settings), stored with the training settings in config.json so that a
# resume can be judged against them.
RUN_OPTIONS = {n: config.SETTINGS[n].fallback for n in config.RUN_OPTIONS
               if config.SETTINGS[n].stored and not config.SETTINGS[n].may_change}

FIXED = tuple(name for name, rule in RULES.items() if not rule.may_change)


def _value(settings: dict, name: str):
    rule = RULES.get(name)
    return settings.get(name, rule.default if rule else None)


def changed_fixed(old: dict, new: dict) -> List[Tuple[str, Any, Any]]:
    """``(name, old value, new value)`` of every setting that differs between
    a run's stored settings ``old`` and a new command's ``new`` and may not
    change at resume. A setting neither rule nor flag knows counts as fixed;
    a missing one as its ``default``."""
    names = sorted(n for n in set(old) | set(new) if not (n in RULES and RULES[n].may_change))
    return [(n, _value(old, n), _value(new, n)) for n in names if _value(old, n) != _value(new, n)]


def as_flag(name: str, value) -> Optional[str]:
    """The ``python -m train`` flag that sets ``name`` to ``value``; None when
    the value is "unset" (no flag sets it: leave the flag out)."""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if value is None:
        return None
    return f"--{name}={shlex.quote(str(value))}"


def refusal(model_dir: str, changes: List[Tuple[str, Any, Any]]) -> str:
    """The one-line refusal of a resume that changes fixed settings."""
    details = ", ".join(f"{n}: {o!r} → {v!r}" for n, o, v in changes)
    why = "; ".join(f"{n}: {RULES[n].reason}" for n, _, _ in changes if n in RULES)
    restore = [as_flag(n, o) for n, o, _ in changes]
    given = [f for f in restore if f]
    dropped = [f"--{n}" for (n, _, _), f in zip(changes, restore) if f is None]
    fix = " ".join(given) + (" and " if given and dropped else "") + (
        f"without {', '.join(dropped)}" if dropped else "")
    return (
        f"The model directory {model_dir!r} holds a different run ({details}); a resume cannot change "
        f"{'these' if len(changes) > 1 else 'this'} ({why}). Resume it with {fix} as it was started, use another "
        "--model_dir, or pass --overwrite to delete it and start afresh."
    )
