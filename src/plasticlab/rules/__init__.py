"""Learning rules. Build one from a string with ``parse_rule("bp(lr=0.01)+oja(lr=1e-3)")``."""

from __future__ import annotations

import ast
import re

from .base import Rule, Signals, Sum, add_params, layer_selected, outer_mean, zeros_like_params
from .feedback import BP, DFA, FA, KP, WM, ErrorDriven, chain_errors, pseudo_gradient
from .curl import Curl
from .hebbian import Hebb, Oja, Sanger
from .random_nn import RandomNN

RULES: dict[str, type[Rule]] = {"bp": BP, "fa": FA, "dfa": DFA, "kp": KP, "wm": WM, "oja": Oja, "sanger": Sanger, "hebb": Hebb,
                              "curl": Curl, "randomnn": RandomNN}


def rule_help() -> dict[str, str]:
    """Rule name -> first line of its docstring (its equation)."""
    return {k: (v.__doc__ or "").strip().splitlines()[0] for k, v in RULES.items()}


_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def _split_top(spec: str) -> list[str]:
    """Split on '+' outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in spec:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "+" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_rule(spec: str, **defaults: dict) -> Rule:
    """Build a rule from text such as ``"bp"``, ``"fa+oja"`` or ``"bp(lr=0.01)+oja(lr=1e-3, layers=(1, 2))"``.

    ``defaults`` maps a rule name to keyword arguments used unless the text overrides them,
    e.g. ``parse_rule("bp+oja", bp={"lr": 0.01}, oja={"lr": 1e-3})``.
    """
    rules = []
    for term in _split_top(spec):
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"cannot parse rule term {term!r} in {spec!r}; write e.g. 'bp(lr=0.01)+oja(lr=0.001)'")
        name, args = m.group(1).lower(), m.group(2)
        if name not in RULES:
            raise ValueError(f"unknown rule {name!r}; choose from: {', '.join(RULES)} (combine with '+', e.g. 'bp+oja')")
        kwargs = dict(defaults.get(name, {}))
        if args and args.strip():
            call = ast.parse(f"f({args})", mode="eval").body
            for kw in call.keywords:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
        try:
            rules.append(RULES[name](**kwargs))
        except TypeError as err:
            fields = [f for f in RULES[name].__dataclass_fields__]
            raise ValueError(f"bad arguments for rule {name!r}: {err}; its fields are {fields}") from None
    return rules[0] if len(rules) == 1 else Sum(tuple(rules))


__all__ = ["Rule", "Signals", "Sum", "BP", "FA", "DFA", "KP", "WM", "Oja", "Sanger", "Hebb", "Curl", "RandomNN", "ErrorDriven", "RULES",
           "parse_rule", "rule_help", "chain_errors", "pseudo_gradient", "add_params", "zeros_like_params",
           "outer_mean", "layer_selected"]
