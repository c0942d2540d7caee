"""What a numeric flag accepts, declared where the flag is defined, checked
by one rule for all three commands.

A ``Domain`` says the type (an integer that is not a bool, or a finite
float: NaN and ±inf are never numbers a user means), the bounds and the
allowed values. The same object

- parses the text of an absl flag (``DEFINE_integer``/``DEFINE_float``
  here: ``python -m train``),
- parses the text of an argparse argument (``argparse_type``: ``python -m
  export`` and ``python -m zoo``),
- checks a value that came from elsewhere (``check``: a recipe, a run's
  ``config.json``, a library caller; ``runs/settings_check.py``),

so a flag's range exists once. Adding a numeric flag is one line, e.g.::

    flag_domains.DEFINE_integer("steps_per_epoch", None, "Stop each epoch after N steps.", at_least(1))
    p.add_argument("--rounds", type=argparse_type(at_least(1)), default=2)

and ``tests/test_flag_domains.py`` tries its out-of-domain values without
being edited. A command that meets an out-of-domain value exits with status
2 and one line naming the flag, before any work or file.
"""

import argparse
import dataclasses
import math
from typing import Optional, Tuple, Union

Number = Union[int, float]


def _text(number: Number) -> str:
    return str(number) if isinstance(number, int) else format(number, "g")


@dataclasses.dataclass(frozen=True)
class Domain:
    """The values a numeric flag accepts.

    Attributes:
        integer: an int (not a bool); otherwise any finite float.
        low, high: inclusive bounds (None: unbounded).
        above: an exclusive lower bound instead of ``low`` (``learning_rate > 0``).
        below: an exclusive upper bound instead of ``high`` (``momentum < 1``).
        values: the only values allowed (e.g. ``pad_values`` 0 or 1).
    """

    integer: bool
    low: Optional[Number] = None
    high: Optional[Number] = None
    above: Optional[Number] = None
    below: Optional[Number] = None
    values: Optional[Tuple[Number, ...]] = None

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.values is not None:
            return f"one of {', '.join(_text(v) for v in self.values)}"
        bounds = (("≥", self.low), (">", self.above), ("≤", self.high), ("<", self.below))
        parts = [f"{sign} {_text(bound)}" for sign, bound in bounds if bound is not None]
        return f"{kind} {' and '.join(parts)}".strip()

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.values is not None:
            return value in self.values
        return not (
            (self.low is not None and value < self.low)
            or (self.above is not None and value <= self.above)
            or (self.high is not None and value > self.high)
            or (self.below is not None and value >= self.below)
        )

    def check(self, value, name: str):
        """``value`` if it is in the domain; else a ValueError naming ``--name``."""
        if not self.contains(value):
            raise ValueError(f"--{name} must be {self.describe()}; got {value!r}.")
        return value

    def parse(self, text) -> Number:
        """The number ``text`` stands for (a ValueError saying what is
        accepted when it is none, or out of the domain)."""
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            value = text
        else:
            try:
                value = int(text, 0) if self.integer else float(text)
            except (TypeError, ValueError):
                value = None
            if value is None and self.integer:
                try:  # "3.0" is 3; "3.5" is not an integer
                    number = float(text)
                    value = int(number) if number.is_integer() else None
                except (TypeError, ValueError, OverflowError):
                    value = None
        if value is None or not self.contains(value):
            raise ValueError(f"must be {self.describe()}; got {text!r}")
        return value


def at_least(low: Number, *, integer: bool = True, high: Optional[Number] = None) -> Domain:
    return Domain(integer=integer, low=low, high=high)


def positive(*, integer: bool = False) -> Domain:
    return Domain(integer=integer, above=0)


def fraction(*, below_one: bool = False) -> Domain:
    """[0, 1], or [0, 1) with ``below_one``."""
    return Domain(integer=False, low=0, high=None if below_one else 1, below=1 if below_one else None)


def one_of(*values: Number, integer: bool = False) -> Domain:
    return Domain(integer=integer, values=tuple(values))


FINITE = Domain(integer=False)


# ---------------------------------------------------------------- argparse


def argparse_type(domain: Domain):
    """An argparse ``type=``: argparse reports its ArgumentTypeError as
    ``argument --flag: must be …; got '…'`` with exit status 2."""

    def parse(text):
        try:
            return domain.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.domain = domain  # what tests/test_flag_domains.py reads
    parse.__name__ = "integer" if domain.integer else "number"  # argparse's "invalid <name> value" fallback
    return parse


# ---------------------------------------------------------------- absl


def _absl_parser(domain: Domain):
    from absl import flags

    class DomainParser(flags.ArgumentParser):
        """absl parser of one ``Domain``; absl reports its ValueError as
        ``flag --name=value: must be …``."""

        def __init__(self):
            super().__init__()
            self.domain = domain

        def parse(self, argument):
            return domain.parse(argument)

        def flag_type(self):
            return "int" if domain.integer else "float"

    return DomainParser()


def DEFINE_integer(name: str, default, help: str, domain: Domain, **kwargs):  # noqa: N802 — absl's naming
    """absl's ``DEFINE_integer`` with the flag's ``domain``."""
    return _define(name, default, help, domain, integer=True, **kwargs)


def DEFINE_float(name: str, default, help: str, domain: Domain, **kwargs):  # noqa: N802 — absl's naming
    """absl's ``DEFINE_float`` with the flag's ``domain`` (finite unless said)."""
    return _define(name, default, help, domain, integer=False, **kwargs)


def _define(name, default, help, domain, *, integer, **kwargs):
    import sys

    from absl import flags

    if domain.integer != integer:
        domain = dataclasses.replace(domain, integer=integer)
    help = f"{help} ({domain.describe()})"
    # The module that called DEFINE_*, not this one: absl lists a module's
    # flags under it (--help).
    kwargs.setdefault("module_name", sys._getframe(2).f_globals["__name__"])  # noqa: SLF001
    return flags.DEFINE(_absl_parser(domain), name, default, help, serializer=flags.ArgumentSerializer(), **kwargs)


def absl_domain(flag) -> Optional[Domain]:
    """The ``Domain`` an absl flag was defined with, or None."""
    return getattr(flag.parser, "domain", None)
