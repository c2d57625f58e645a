"""The rule-string grammar and --set value parsing: every documented form, inside and outside lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plasticlab.experiments.base import ConfigError, prepare
from plasticlab.rules import BP, KP, Oja, RuleSyntaxError, Sum, parse_rule

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("text,names", [
    ("bp", ["bp"]), ("fa+oja", ["fa", "oja"]), ("bp(lr=0.05)", ["bp"]),
    ("bp(lr=0.01)+oja(lr=1e-3)", ["bp", "oja"]), ("bp(lr=0.02)+oja(lr=0.002)", ["bp", "oja"]),
    ("bp(lr=0.01)+oja(lr=1e-3, layers=(1, 2))", ["bp", "oja"]), ("kp(lr=.1, decay=1e-4,)", ["kp"]),
    (" bp ( lr = 5e-2 ) + oja ", ["bp", "oja"]), ("oja(layers=[1,2], lr=1E-3)", ["oja"]), ("BP", ["bp"]),
])
def test_documented_forms_parse(text, names):
    rule = parse_rule(text)
    got = [r.name for r in rule.rules] if isinstance(rule, Sum) else [rule.name]
    assert got == names


def test_arguments_reach_the_rule():
    rule = parse_rule("bp(lr=0.05)+oja(lr=1e-3, layers=(1, 2))")
    assert isinstance(rule.rules[0], BP) and rule.rules[0].lr == 0.05
    assert isinstance(rule.rules[1], Oja) and rule.rules[1].lr == 1e-3 and tuple(rule.rules[1].layers) == (1, 2)
    kp = parse_rule("kp(decay=0)", kp={"lr": 0.3, "decay": 0.1})
    assert isinstance(kp, KP) and kp.lr == 0.3 and kp.decay == 0  # text overrides the defaults


def test_every_rule_string_in_the_readme_parses():
    found = set(re.findall(r"\b((?:bp|fa|dfa|kp|wm|oja|sanger|hebb)(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?"
                           r"(?:\+(?:bp|fa|dfa|kp|wm|oja|sanger|hebb)(?:\([^()]*\))?)+)", README.read_text()))
    found |= {"bp(lr=0.01)+oja(lr=1e-3)"}
    for text in found:
        parse_rule(text)


@pytest.mark.parametrize("text,position", [
    ("bp(lr=abc)", 7), ("bp(lr=0.05", 11), ("bp+", 4), ("bp oja", 4), ("bp(lr=0.1 x=2)", 11), ("(bp)", 1),
    ("bp(lr==1)", 7), ("bp(lr=1)+", 10), ("bp$", 3),
])
def test_syntax_errors_name_the_position(text, position):
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    assert info.value.position + 1 == position and f"position {position}" in str(info.value)


@pytest.mark.parametrize("text,needle", [("foo", "unknown rule 'foo'"), ("bp(foo=1)", "no argument 'foo'"),
                                         ("bp+fa", "at most one"), ("bp(lr=1, lr=2)", "twice"),
                                         ("bp(lr=-1)", "lr=-1 must be > 0"), ("kp(decay=-1e-3)", "must be >= 0"),
                                         ("wm(n_noise=2.5)", "integer >= 1"), ("oja(lr=1e999)", "finite"),
                                         ("bp(lr='fast')", "must be a number")])
def test_semantic_errors_name_the_problem(text, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_rule(text)


@pytest.mark.parametrize("value,expected", [
    ("bp(lr=0.05)", ("bp(lr=0.05)",)),
    ("[bp(lr=0.05)+oja(lr=0.001)]", ("bp(lr=0.05)+oja(lr=0.001)",)),
    ("bp(lr=0.05)+oja(lr=0.001)", ("bp(lr=0.05)+oja(lr=0.001)",)),
    ("[bp,fa(lr=0.1),kp(lr=0.01, decay=1e-4)]", ("bp", "fa(lr=0.1)", "kp(lr=0.01, decay=1e-4)")),
    ("bp(lr=0.05),", ("bp(lr=0.05)",)),
    ("bp,fa", ("bp", "fa")),
    ("[oja(layers=(1,2))]", ("oja(layers=(1,2))",)),
])
def test_set_lists_of_rules_keep_their_parentheses(value, expected):
    _, cfg = prepare("quickstart", overrides={"rules": value})
    assert cfg.rules == expected


@pytest.mark.parametrize("key,value,expected", [("hidden", "[50,20]", (50, 20)), ("hidden", "(50,20)", (50, 20)),
                                                ("hidden", "50", (50,)), ("seeds", "1e1", 10),
                                                ("lr", "5e-3", 0.005), ("epochs", "2", 2.0)])
def test_set_numbers_and_number_lists(key, value, expected):
    _, cfg = prepare("quickstart", overrides={key: value})
    assert getattr(cfg, key) == expected and type(getattr(cfg, key)) is type(expected)


def test_values_from_a_config_file_are_checked_like_set():
    with pytest.raises(ConfigError, match=r"^config file f.json: seeds=2.5"):
        prepare("quickstart", config={"seeds": 2.5}, config_source="config file f.json")
    with pytest.raises(ConfigError, match=r"hidden="):
        prepare("quickstart", config={"hidden": [10, "x"]}, config_source="config file f.json")
    _, cfg = prepare("quickstart", config={"hidden": [10, 20], "lr": 1}, config_source="config file f.json")
    assert cfg.hidden == (10, 20) and cfg.lr == 1.0 and isinstance(cfg.lr, float)


_NAMES = st.sampled_from(["bp", "fa", "dfa", "kp", "wm"])
_LRS = st.floats(min_value=1e-6, max_value=10, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(_NAMES, _LRS, st.one_of(st.none(), _LRS), st.booleans())
def test_generated_specs_parse_with_their_rates(name, lr, oja_lr, spaces):
    sp = " " if spaces else ""
    text = f"{name}({sp}lr{sp}={sp}{lr!r}{sp})" + (f"{sp}+{sp}oja(lr={oja_lr!r})" if oja_lr is not None else "")
    rule = parse_rule(text)
    parts = rule.rules if isinstance(rule, Sum) else (rule,)
    assert parts[0].name == name and parts[0].lr == lr
    if oja_lr is not None:
        assert isinstance(parts[1], Oja) and parts[1].lr == oja_lr
    _, cfg = prepare("quickstart", overrides={"rules": f"[{text},{name}]"})
    assert cfg.rules == (text.strip(), name)
