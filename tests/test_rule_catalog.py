"""The rule catalog (``plasticlab rules``): every rule's full equation and parameters, read from its class."""

from __future__ import annotations

import inspect
import json
import re

import pytest

from plasticlab.rules import RULES, rule_parameters
from plasticlab.rules.catalog import doc_sections, format_catalog, parameter_docs, rule_catalog, summary_and_equation


def _by_name() -> dict[str, dict]:
    return {e["name"]: e for e in rule_catalog()}


def test_catalog_covers_every_rule_in_order():
    assert [e["name"] for e in rule_catalog()] == list(RULES)


@pytest.mark.parametrize("name", list(RULES))
def test_summary_and_equation(name):
    e = _by_name()[name]
    assert e["summary"] and "\n" not in e["summary"]
    assert e["equation"].strip(), f"rule {name!r} has no equation"
    assert "Delta" in e["equation"], f"rule {name!r}: the equation should state the update Delta ..."
    sections = doc_sections(RULES[name].__doc__)
    assert "Equation" in sections and "Parameters" in sections, \
        f"rule {name!r}: the class docstring needs 'Equation:' and 'Parameters:' sections"


@pytest.mark.parametrize("name", list(RULES))
def test_every_constructor_parameter_with_default_and_doc(name):
    e = _by_name()[name]
    expected = rule_parameters(RULES[name])
    assert [p["name"] for p in e["parameters"]] == list(expected)
    for p in e["parameters"]:
        want = expected[p["name"]]
        assert p["required"] == (want is inspect.Parameter.empty)
        if not p["required"]:
            assert p["default"] == want
        assert p["doc"].strip(), f"rule {name!r}: parameter {p['name']!r} is undocumented"
    # documented in the class's own docstring, not only inherited
    own = parameter_docs(RULES[name].__doc__)
    assert set(expected) <= set(own), f"rule {name!r} does not document {sorted(set(expected) - set(own))}"


def test_no_reference_to_spec_md():
    text = json.dumps(rule_catalog(), default=repr) + format_catalog()
    assert not re.search(r"spec\.md|shared/spec", text, re.IGNORECASE)
    assert "SPEC" not in text


def test_multiline_equations_kept_whole():
    e = _by_name()
    assert "<h_l h_l^T> W_l" in e["oja"]["equation"] and "W_l^T h_l" in e["oja"]["equation"]
    assert "LT(<h_l h_l^T>)" in e["sanger"]["equation"] and "sum_{j<=i}" in e["sanger"]["equation"]
    assert len(e["wm"]["equation"].splitlines()) >= 3
    assert "decay B_l" in e["kp"]["equation"]


def test_format_catalog_is_plain_text():
    text = format_catalog()
    assert "\r" not in text and "\x1b" not in text
    for name, cls in RULES.items():
        assert f"{name}: " in text
        for pname in rule_parameters(cls):
            assert f"    {pname} = " in text
    assert "Delta W_l = lr (<h_l h_{l-1}^T> - <h_l h_l^T> W_l)" in text  # the Oja equation is not cut


def test_docstring_convention_parser():
    doc = """Summary line.

    Equation:
        a = b
          + c

    Some prose: not a section.

    Parameters:
        lr: the rate,
            continued here.
        layers: which layers.
    """
    summary, eq = summary_and_equation(doc)
    assert summary == "Summary line."
    assert eq == "a = b\n  + c"
    assert parameter_docs(doc) == {"lr": "the rate, continued here.", "layers": "which layers."}
    # no Equation section: the rest of the first paragraph
    assert summary_and_equation("Rule X.\n    y = 2 x\n\n    More.") == ("Rule X.", "y = 2 x")
