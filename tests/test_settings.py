"""Setting constraints: every experiment declares them, its defaults pass, and the checks refuse what they should."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

import pytest

from plasticlab.experiments import discover
from plasticlab.experiments.base import ConfigError, prepare
from plasticlab.settings import SettingError, constraint_of, describe, result_fields, setting, validate

EXPERIMENTS = sorted(n for n, e in discover().items() if e.run.__module__.startswith("plasticlab.experiments."))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_field_is_declared_and_defaults_pass(name):
    exp = discover()[name]
    hints = typing.get_type_hints(exp.config)
    for f in dataclasses.fields(exp.config):
        c = f.metadata.get("plasticlab")
        assert c is not None, f"{name}.{f.name} declares no constraint"
        assert c.doc, f"{name}.{f.name} has no doc"
        if "str" in str(hints[f.name]):
            assert c.choices is not None or c.kind is not None, f"{name}.{f.name}: text without choices or kind"
    prepare(name)  # defaults validate
    prepare(name, quick=True)  # and so do the --quick values


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_numeric_upper_bounds_keep_sizes_finite(name):
    """Every integer size has an upper bound (a hostile value cannot exhaust memory before a check)."""
    exp = discover()[name]
    hints = typing.get_type_hints(exp.config)
    for f in dataclasses.fields(exp.config):
        c = constraint_of(f, hints[f.name])
        base = typing.get_args(hints[f.name])[0] if typing.get_origin(hints[f.name]) is tuple else hints[f.name]
        if base is int and c.choices is None and c.affects_result:
            assert c.le is not None or c.lt is not None, f"{name}.{f.name} has no upper bound"


@dataclass
class _Cfg:
    n: int = setting(3, ge=1, le=10, doc="a count")
    rate: float = setting(0.1, gt=0, doc="a rate")
    share: float = setting(0.5, ge=0, le=1, doc="a fraction")
    widths: tuple[int, ...] = setting((4, 5), ge=1, le=100, doc="sizes")
    mode: str = setting("a", choices=("a", "b"), doc="a choice")
    maybe: int | None = setting(None, ge=1, le=5, doc="optional")
    flag: bool = setting(True, doc="a switch")
    plot_dpi: int = setting(100, ge=10, le=600, affects_result=False, doc="presentation")


@pytest.mark.parametrize("change,needle", [
    ({"n": 2.5}, "not an integer"), ({"n": True}, "not an integer"), ({"n": 0}, "n=0"), ({"n": 11}, "n=11"),
    ({"rate": 0.0}, "rate=0.0"), ({"rate": math.nan}, "not finite"), ({"rate": math.inf}, "not finite"),
    ({"rate": "x"}, "not a number"), ({"share": 1.5}, "share=1.5"), ({"widths": ()}, "empty"),
    ({"widths": (4, 0)}, "0 is out of range"), ({"widths": (4, "x")}, "not an integer"), ({"widths": 4}, "not a list"),
    ({"mode": "c"}, "mode='c'"), ({"maybe": 9}, "maybe=9"), ({"flag": 1}, "true/false"),
])
def test_validate_refuses(change, needle):
    with pytest.raises(SettingError) as info:
        validate(dataclasses.replace(_Cfg(), **change))
    msg = str(info.value)
    assert needle in msg and "allowed:" in msg and "\n" not in msg
    assert info.value.key == next(iter(change))


def test_validate_accepts_edges_and_none():
    validate(dataclasses.replace(_Cfg(), n=1, share=0.0, widths=(1, 100), maybe=None, mode="b"))
    validate(dataclasses.replace(_Cfg(), n=10, share=1.0, maybe=5))


def test_presentation_fields_are_not_result_fields():
    assert "plot_dpi" not in result_fields(_Cfg) and "n" in result_fields(_Cfg)
    assert "on_divergence" not in result_fields(discover()["sam-table1"].config)


def test_describe_says_what_is_allowed():
    hints = typing.get_type_hints(_Cfg)
    f = {f.name: f for f in dataclasses.fields(_Cfg)}
    assert describe(f["widths"], hints["widths"]) == "a non-empty list, each entry an integer >= 1 and <= 100"
    assert describe(f["mode"], hints["mode"]) == "one of a, b"
    assert describe(f["maybe"], hints["maybe"]).endswith(", or none")


def test_cross_field_check_names_what_was_set():
    with pytest.raises(ConfigError, match=r"c_max.*with c_min set|c_min"):
        prepare("curl-fig2", overrides={"c_min": "5"})
