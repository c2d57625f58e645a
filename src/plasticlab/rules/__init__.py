"""Learning rules. Build one from a string with ``parse_rule("bp(lr=0.01)+oja(lr=1e-3)")``."""

from __future__ import annotations

import re

from .base import Rule, Signals, Sum, add_params, layer_selected, outer_mean, zeros_like_params
from .feedback import BP, DFA, FA, KP, WM, ErrorDriven, chain_errors, pseudo_gradient
from .bptt import BPTT, OjaRec
from .curl import Curl
from .hebbian import Hebb, Oja, Sanger
from .meta import MetaPlasticity
from .random_nn import RandomNN
from .sam import SAM

RULES: dict[str, type[Rule]] = {"bp": BP, "fa": FA, "dfa": DFA, "kp": KP, "wm": WM, "oja": Oja, "sanger": Sanger, "hebb": Hebb,
                              "curl": Curl, "randomnn": RandomNN, "sam": SAM, "meta": MetaPlasticity, "bptt": BPTT, "oja_rec": OjaRec}


def rule_help() -> dict[str, str]:
    """Rule name -> first line of its docstring (its equation)."""
    return {k: (v.__doc__ or "").strip().splitlines()[0] for k, v in RULES.items()}


class RuleSyntaxError(ValueError):
    """A rule string that does not parse; ``position`` is the 0-based offset of the problem in ``text``."""

    def __init__(self, text: str, position: int, problem: str):
        self.text, self.position, self.problem = text, position, problem
        super().__init__(f"rule {text!r}, position {position + 1}: {problem}")


_TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>[()\[\]=,+]))")


class _RuleParser:
    """Recursive descent over ``spec := term ('+' term)*``, ``term := NAME ['(' [NAME '=' value, ...] ')']``,
    ``value := number | 'text' | True | False | None | (value, ...) | [value, ...]``."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def _fail(self, problem: str, at: int | None = None):
        raise RuleSyntaxError(self.text, self.pos if at is None else at, problem)

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> tuple[str, str, int] | None:
        """(kind, text, start) of the next token without consuming it; None at the end."""
        self._skip()
        if self.pos >= len(self.text):
            return None
        m = _TOKEN.match(self.text, self.pos)
        if not m or m.end() == self.pos:
            self._fail(f"unexpected character {self.text[self.pos]!r}")
        kind = m.lastgroup
        return kind, m.group(kind), m.start(kind)

    def take(self, what: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        want = what or kind
        if tok is None:
            self._fail(f"expected {want!r}, reached the end" if want else "unexpected end")
        if (what is not None and tok[1] != what) or (kind is not None and tok[0] != kind):
            self._fail(f"expected {want!r}, got {tok[1]!r}", tok[2])
        self.pos = tok[2] + len(tok[1])
        return tok

    def spec(self) -> list[tuple[str, dict, int]]:
        terms = [self.term()]
        while (tok := self.peek()) is not None:
            if tok[1] != "+":
                self._fail(f"expected '+' or the end, got {tok[1]!r}", tok[2])
            self.take("+")
            terms.append(self.term())
        return terms

    def term(self) -> tuple[str, dict, int]:
        tok = self.peek()
        if tok is None or tok[0] != "name":
            self._fail("expected a rule name such as bp, fa or oja" + (f", got {tok[1]!r}" if tok else ", reached the end"),
                       tok[2] if tok else None)
        _, name, start = self.take(kind="name")
        kwargs: dict = {}
        if (tok := self.peek()) is not None and tok[1] == "(":
            self.take("(")
            while (tok := self.peek()) is not None and tok[1] != ")":
                _, key, kpos = self.take(kind="name")
                if key in kwargs:
                    self._fail(f"argument {key!r} given twice", kpos)
                self.take("=")
                kwargs[key] = self.value()
                if (tok := self.peek()) is not None and tok[1] == ",":
                    self.take(",")
                elif tok is None or tok[1] != ")":
                    self._fail("expected ',' or ')'" + (f", got {tok[1]!r}" if tok else ", reached the end"),
                               tok[2] if tok else None)
            self.take(")")
        return name, kwargs, start

    def value(self):
        tok = self.peek()
        if tok is None:
            self._fail("expected a value, reached the end")
        kind, text, start = tok
        if kind == "num":
            self.take(kind="num")
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            self.take(kind="str")
            return text[1:-1]
        if kind == "name" and text in ("True", "False", "None", "true", "false", "none"):
            self.take(kind="name")
            return {"true": True, "false": False, "none": None}[text.lower()]
        if text in ("(", "["):
            close = ")" if text == "(" else "]"
            self.take(text)
            items = []
            while (tok := self.peek()) is not None and tok[1] != close:
                items.append(self.value())
                if (tok := self.peek()) is not None and tok[1] == ",":
                    self.take(",")
            self.take(close)
            return tuple(items)
        self._fail(f"expected a number, a quoted text, True/False/None or a tuple, got {text!r}", start)


def parse_rule(spec: str, **defaults: dict) -> Rule:
    """Build a rule from text such as ``"bp"``, ``"fa+oja"`` or ``"bp(lr=0.01)+oja(lr=1e-3, layers=(1, 2))"``.

    ``defaults`` maps a rule name to keyword arguments used unless the text overrides them,
    e.g. ``parse_rule("bp+oja", bp={"lr": 0.01}, oja={"lr": 1e-3})``. A syntax error raises
    :class:`RuleSyntaxError` with its position; an unknown rule or argument a ``ValueError`` naming it.
    """
    if not isinstance(spec, str):
        raise ValueError(f"a rule must be given as text, got {spec!r}")
    terms = _RuleParser(spec).spec()
    rules = []
    for name, args, start in terms:
        key = name.lower()
        if key not in RULES:
            raise ValueError(f"unknown rule {name!r} in {spec!r}; choose from: {', '.join(RULES)} "
                             "(combine with '+', e.g. 'bp+oja')")
        cls = RULES[key]
        fields = rule_parameters(cls)
        unknown = [k for k in args if k not in fields]
        if unknown:
            raise ValueError(f"rule {name!r} has no argument {unknown[0]!r}; its arguments are: "
                             f"{', '.join(fields) or 'none'}")
        for arg, val in args.items():
            problem = _argument_problem(arg, val)
            if problem:
                raise ValueError(f"rule {name!r} in {spec!r}: {arg}={val!r} {problem}")
        kwargs = {**defaults.get(key, {}), **args}
        try:
            rules.append(cls(**kwargs))
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad arguments for rule {name!r} in {spec!r}: {err}") from None
    return rules[0] if len(rules) == 1 else Sum(tuple(rules))


# what a rule argument given in text may be: a rate is > 0, a decay or noise level >= 0, a count >= 1
_POSITIVE = {"lr", "lr_mirror", "init_scale", "target_norm", "clip"}
_NON_NEGATIVE = {"decay", "decay_mirror", "sigma"}
_COUNTS = {"n_noise", "k"}


def _argument_problem(arg: str, val: object) -> str | None:
    """Why a numeric rule argument is not allowed, or None."""
    import math

    if isinstance(val, bool) or not isinstance(val, (int, float)):
        return "must be a number" if arg in _POSITIVE | _NON_NEGATIVE | _COUNTS else None
    if not math.isfinite(val):
        return "must be finite"
    if arg in _POSITIVE and val <= 0:
        return "must be > 0"
    if arg in _NON_NEGATIVE and val < 0:
        return "must be >= 0"
    if arg in _COUNTS and (not isinstance(val, int) or val < 1):
        return "must be an integer >= 1"
    return None


def rule_parameters(cls: type[Rule]) -> dict[str, object]:
    """A rule class's constructor parameters and their defaults (``inspect.Parameter.empty`` if required)."""
    import inspect

    sig = inspect.signature(cls)
    return {k: p.default for k, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


__all__ = ["Rule", "Signals", "Sum", "ErrorDriven", "BP", "FA", "DFA", "KP", "WM", "Oja", "Sanger", "Hebb", "Curl",
           "RandomNN", "SAM", "MetaPlasticity", "BPTT", "OjaRec", "RULES", "parse_rule", "rule_help", "rule_parameters",
           "RuleSyntaxError"]
