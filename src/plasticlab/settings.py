"""Experiment settings with their constraints, declared next to the config fields.

A config field says what it allows in its dataclass metadata::

    from plasticlab.settings import setting

    @dataclass
    class MyConfig:
        seeds: int = setting(5, ge=1, le=1000, doc="independent seeds (vmapped)")
        lr: float = setting(0.02, gt=0, doc="learning rate")
        keep: float = setting(0.5, ge=0, le=1)                       # a fraction
        activation: str = setting("tanh", choices=ACTIVATIONS)        # or kind="activation"
        rules: tuple[str, ...] = setting(("bp", "bp+oja"), kind="rule")   # each entry parsed by parse_rule
        on_divergence: str = setting("stop", choices=("stop", "record"), affects_result=False)

``validate(cfg)`` checks every field before any work starts: its type (an ``int`` field refuses 2.5 and
``True``; a ``float`` field refuses NaN and inf), its range (``ge``/``gt``/``le``/``lt``, for tuples every
entry), its choices or kind, and that tuples are not empty (unless ``allow_empty``). A field without
metadata gets the defaults of :func:`default_constraint` (counts and sizes >= 1, seeds >= 0, floats finite
and >= 0, rates > 0, fractions in [0, 1]). A config class may also define ``validate(self)`` for checks
that involve several fields; it raises :class:`SettingError` naming the key.

``affects_result=False`` marks a presentation-only field (plot options, what to do on divergence, log
verbosity): it is left out of the cache key of a run's units, so changing it reuses what finished.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

__all__ = ["settings_dataclass", "with_default", "Constraint", "SettingError", "setting", "constraint_of", "default_constraint", "validate",
           "result_fields", "describe", "type_name", "strip_optional", "KINDS"]

_META = "plasticlab"


class SettingError(ValueError):
    """A setting with a bad value: ``key``, ``value`` and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str, problem: str | None = None):
        self.key, self.value, self.allowed = key, value, allowed
        shown = _show(value)
        msg = f"{key}={shown}: {problem + '; ' if problem else ''}allowed: {allowed}"
        super().__init__(msg)


def _show(value: Any, quote: bool = True) -> str:
    """A value as written after ``--set key=``: lists as [a,b], strings quoted when ``quote``."""
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_show(v, quote) for v in value) + "]"
    if isinstance(value, str) and quote:
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Constraint:
    """What one setting allows (for a tuple field: what each entry allows)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | Callable[[], Iterable] | None = None
    kind: str | None = None
    allow_empty: bool = False
    allow_nonfinite: bool = False
    affects_result: bool = True
    doc: str | None = None

    def choice_list(self) -> tuple | None:
        if self.kind is not None and self.choices is None:
            lister = KINDS[self.kind][1]
            return tuple(lister()) if lister is not None else None
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def range_text(self) -> str:
        def _g(v: float) -> str:
            return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"

        parts = []
        if self.gt is not None:
            parts.append(f"> {_g(self.gt)}")
        if self.ge is not None:
            parts.append(f">= {_g(self.ge)}")
        if self.lt is not None:
            parts.append(f"< {_g(self.lt)}")
        if self.le is not None:
            parts.append(f"<= {_g(self.le)}")
        return " and ".join(parts)


def setting(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: tuple | Callable[[], Iterable] | None = None, kind: str | None = None,
            allow_empty: bool = False, allow_nonfinite: bool = False, affects_result: bool = True,
            doc: str | None = None) -> Any:
    """A dataclass field with its default and its constraint (see the module docstring)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}; choose one of: {', '.join(KINDS)}")
    meta = {_META: Constraint(ge, gt, le, lt, choices, kind, allow_empty, allow_nonfinite, affects_result, doc)}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ----------------------------------------------------------------------------- kinds

def _check_rule(text: str) -> str | None:
    from .rules import RuleSyntaxError, parse_rule

    try:
        parse_rule(text)
    except (RuleSyntaxError, ValueError, TypeError) as err:
        return str(err)
    return None


def _datasets() -> list[str]:
    from .data import available_datasets

    return sorted(available_datasets())


def _activations() -> list[str]:
    from .networks import ACTIVATIONS

    return sorted(ACTIVATIONS)


def _inits() -> list[str]:
    from .networks import INITS

    return list(INITS)


def _check_assignment(text: str) -> str | None:
    key, eq, _ = text.partition("=")
    return None if eq and key.strip() else "not of the form key=value"


# kind -> (per-entry check returning an error or None, lister of the allowed names or None, description)
KINDS: dict[str, tuple[Callable[[str], str | None] | None, Callable[[], Iterable] | None, str]] = {
    "rule": (_check_rule, None, "a rule string such as bp, fa+oja or bp(lr=0.01)+oja(lr=1e-3) (`plasticlab rules`)"),
    "dataset": (None, _datasets, "a data set name (`plasticlab datasets`)"),
    "activation": (None, _activations, "an activation name"),
    "init": (None, _inits, "an initialisation name"),
    "assignment": (_check_assignment, None, "key=value, a setting of this experiment and its value"),
}


# ----------------------------------------------------------------------------- defaults and lookup

_SEED_NAMES = ("seed", "data_seed")


def default_constraint(name: str, tp: Any) -> Constraint:
    """The constraint of a field that declares none: by its type and its name.

    Integers are counts or sizes (>= 1) except seeds (>= 0); floats are finite and >= 0, rates
    (``lr``, ``eta``, names with ``_lr``/``lr_``/``eta_``) > 0 and fractions (names with ``fraction``) in
    [0, 1]; strings are free text.
    """
    base = _elem_type(tp)
    if base is int:
        return Constraint(ge=0 if name in _SEED_NAMES or name.endswith("_seed") else 1)
    if base is float:
        low = name.lower()
        if "fraction" in low:
            return Constraint(ge=0, le=1)
        if low in ("lr", "eta", "lrs", "etas") or low.endswith("_lr") or low.startswith(("lr_", "eta_")) \
                or low.endswith("_lrs"):
            return Constraint(gt=0)
        return Constraint(ge=0)
    return Constraint()


def constraint_of(f: dataclasses.Field, tp: Any) -> Constraint:
    """The field's declared constraint, else :func:`default_constraint`."""
    c = f.metadata.get(_META) if f.metadata else None
    return c if c is not None else default_constraint(f.name, tp)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``T | None`` -> (T, True); any other type -> (it, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        inner = [a for a in args if a is not type(None)]
        return (inner[0] if len(inner) == 1 else tp), type(None) in args
    return tp, False


def _elem_type(tp: Any) -> Any:
    tp, _ = strip_optional(tp)
    if typing.get_origin(tp) in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return args[0] if args else str
    return tp


def type_name(tp: Any) -> str:
    """A short human name of a field type: ``int``, ``list of float``, ``str or none``."""
    inner, optional = strip_optional(tp)
    if typing.get_origin(inner) in (tuple, list):
        name = f"list of {_elem_type(inner).__name__}"
    else:
        name = getattr(inner, "__name__", str(inner))
    return name + (" or none" if optional else "")


def result_fields(cfg_type: type) -> list[str]:
    """Names of the fields that determine results (those not declared ``affects_result=False``)."""
    hints = typing.get_type_hints(cfg_type)
    return [f.name for f in dataclasses.fields(cfg_type) if constraint_of(f, hints[f.name]).affects_result]


def describe(f: dataclasses.Field, tp: Any) -> str:
    """What a field allows, in words (for errors and ``plasticlab show``)."""
    c = constraint_of(f, tp)
    inner, optional = strip_optional(tp)
    is_seq = typing.get_origin(inner) in (tuple, list)
    base = _elem_type(tp)
    parts = []
    what = {int: "an integer", float: "a finite number" if not c.allow_nonfinite else "a number",
            bool: "true or false", str: "text", dict: "a JSON object"}.get(base, getattr(base, "__name__", "value"))
    choices = c.choice_list()
    if choices is not None:
        what = "one of " + ", ".join(str(x) for x in choices)
    elif c.kind is not None:
        what = KINDS[c.kind][2]
    rng = c.range_text() if base in (int, float) else ""
    parts.append(what + (f" {rng}" if rng else ""))
    text = ("a non-empty list, each entry " if is_seq and not c.allow_empty else "a list, each entry " if is_seq
            else "") + parts[0]
    if optional:
        text += ", or none"
    return text


# ----------------------------------------------------------------------------- validation

def _check_scalar(key: str, value: Any, base: Any, c: Constraint, allowed: str, whole: Any) -> None:
    if base is bool:
        if not isinstance(value, bool):
            raise SettingError(key, whole, allowed, "not true/false")
        return
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                raise SettingError(key, whole, allowed, "an integer is needed (write it without a decimal point)")
            raise SettingError(key, whole, allowed, "not an integer")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(key, whole, allowed, "not a number")
        if not c.allow_nonfinite and not math.isfinite(value):
            raise SettingError(key, whole, allowed, "not finite")
    elif base is str:
        if not isinstance(value, str):
            raise SettingError(key, whole, allowed, "not text")
    elif base is dict:
        if not isinstance(value, dict):
            raise SettingError(key, whole, allowed, "not a JSON object")
        return
    if base in (int, float) and (isinstance(value, (int, float))) and math.isfinite(value):
        bad = ((c.ge is not None and value < c.ge) or (c.gt is not None and value <= c.gt)
               or (c.le is not None and value > c.le) or (c.lt is not None and value >= c.lt))
        if bad:
            raise SettingError(key, whole, allowed, f"{value} is out of range" if whole is not value else None)
    if base is str and ("\x00" in value or any(ord(ch) < 32 for ch in value)):
        raise SettingError(key, whole, allowed, "control characters are not allowed")
    choices = c.choice_list()
    if choices is not None and value not in choices:
        raise SettingError(key, whole, allowed, f"{value!r} is not one of them" if whole is not value else None)
    if base is str:
        if c.kind is not None and KINDS[c.kind][0] is not None:
            err = KINDS[c.kind][0](value)
            if err:
                raise SettingError(key, whole, allowed, err)


def check_value(f: dataclasses.Field, tp: Any, value: Any) -> None:
    """Raise :class:`SettingError` if ``value`` is not allowed for field ``f`` of type ``tp``."""
    c = constraint_of(f, tp)
    allowed = describe(f, tp)
    inner, optional = strip_optional(tp)
    if value is None:
        if optional:
            return
        raise SettingError(f.name, value, allowed, "a value is required")
    base = _elem_type(tp)
    if typing.get_origin(inner) in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise SettingError(f.name, value, allowed, "not a list")
        if not value and not c.allow_empty:
            raise SettingError(f.name, value, allowed, "the list is empty")
        for v in value:
            _check_scalar(f.name, v, base, c, allowed, value)
    else:
        _check_scalar(f.name, value, base, c, allowed, value)


def validate(cfg: Any) -> None:
    """Check every field of the config dataclass ``cfg``, then its own ``validate()`` if it has one."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        check_value(f, hints[f.name], getattr(cfg, f.name))
    own = getattr(cfg, "validate", None)
    if callable(own):
        own()


def settings_dataclass(shared: type, order: Sequence[str]) -> Callable[[type], type]:
    """A class decorator that stands for ``@dataclass`` on the sibling configs of one paper.

    ``shared`` is a plain class (not a dataclass; its plain bases' settings count as its own) whose annotated
    attributes are the settings the siblings share,
    each with its usual default (``setting(...)``); the decorated class (a subclass of ``shared``) gets every one of
    them it does not declare itself; one it declares again replaces the shared default or doc. All fields are then
    listed in ``order``, which names every setting of the siblings: ``plasticlab show`` and config.json list a
    config's settings in field order, and a dataclass base would put all of its fields before the subclass's own.
    """
    shared_fields: dict[str, Any] = {}  # ``shared``'s settings and those of its plain base classes
    for base in reversed(shared.__mro__):
        shared_fields.update(base.__dict__.get("__annotations__", {}))

    def build(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        for name, tp in shared_fields.items():
            if name not in own:
                own[name] = tp
                setattr(cls, name, copy.copy(getattr(shared, name)))  # a field object of its own per config
        unplaced = [name for name in own if name not in order]
        if unplaced:
            raise TypeError(f"{cls.__name__}: settings {unplaced} have no place in the settings order")
        cls.__annotations__ = {name: own[name] for name in order if name in own}
        return dataclass(cls)

    return build


def with_default(shared: dataclasses.Field, default: Any) -> Any:
    """A setting of a ``settings_dataclass`` base (e.g. ``MetaConfig.k_shot``) with another default: the same
    constraint and doc."""
    return dataclasses.field(default=default, metadata=shared.metadata)
