"""The catalog of learning rules: name, summary, full equation and parameters, read from the rule classes.

Docstring convention of a rule class (checked by ``tests/test_rule_catalog.py`` for every rule in
``plasticlab.rules.RULES``)::

    class Oja(_LayerwiseHebbian):
        \"\"\"One-line summary (the first line of the docstring).

        Equation:
            Delta W_l = lr (<h_l h_{l-1}^T> - <h_l h_l^T> W_l)
            Delta b_l = 0

        Free text (not part of the catalog).

        Parameters:
            lr: learning rate of the Oja term.
            layers: 1-based indices of the layers that learn;
                continuation lines are indented further.
        \"\"\"

* summary: the docstring's first line.
* equation: the body of the ``Equation:`` section, i.e. the lines indented below a line that reads
  exactly ``Equation:``, up to the next line at the section header's indentation; dedented, several
  lines kept as they are. It uses the code's notation (``docs/choices.md`` section 0). Without such a
  section the equation is the rest of the docstring's first paragraph (empty if there is none).
* parameters: the constructor's parameters and defaults from ``plasticlab.rules.rule_parameters``;
  each one's text from the ``Parameters:`` section, one ``name: text`` line per parameter
  (continuation lines indented deeper are joined to it). A parameter missing from the class's own
  docstring is looked up in its base classes' docstrings (MRO order), so a subclass may document only
  what it adds; the rules in this package document every parameter themselves.

``rule_catalog()`` returns one dict per rule; ``format_catalog`` renders it as plain text.
"""

from __future__ import annotations

import inspect
import re
import textwrap

_SECTION = re.compile(r"^(?P<indent>\s*)(?P<name>[A-Z][A-Za-z ]*):\s*$")
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<text>.*)$")


def doc_sections(doc: str | None) -> dict[str, str]:
    """``Header:`` sections of a docstring (header name -> dedented body); only headers followed by an
    indented body count, so prose ending in a colon is not taken for a section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _SECTION.match(lines[i])
        if not m:
            i += 1
            continue
        base = len(m.group("indent"))
        body, j = [], i + 1
        while j < len(lines):
            line = lines[j]
            if line.strip() and len(line) - len(line.lstrip()) <= base:
                break
            body.append(line)
            j += 1
        while body and not body[-1].strip():
            body.pop()
        if body and body[0].strip():
            out.setdefault(m.group("name"), textwrap.dedent("\n".join(body)))
            i = j
        else:
            i += 1
    return out


def parameter_docs(doc: str | None) -> dict[str, str]:
    """``name -> text`` from a docstring's ``Parameters:`` section (continuation lines joined with spaces)."""
    body = doc_sections(doc).get("Parameters", "")
    out: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        if not line.strip():
            current = None
            continue
        m = _PARAM.match(line)
        if m and not line[0].isspace():
            current = m.group("name")
            out[current] = m.group("text").strip()
        elif current is not None:
            out[current] = (out[current] + " " + line.strip()).strip()
    return out


def summary_and_equation(doc: str | None) -> tuple[str, str]:
    """(first line, equation) of a rule docstring by the convention above."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary = lines[0].strip() if lines else ""
    equation = doc_sections(doc).get("Equation")
    if equation is None:  # fallback: rest of the first paragraph
        para = []
        for line in lines[1:]:
            if not line.strip():
                break
            para.append(line)
        equation = textwrap.dedent("\n".join(para)).strip("\n")
    return summary, equation


def rule_entry(name: str, cls: type) -> dict:
    """The catalog entry of one rule class."""
    from . import rule_parameters

    summary, equation = summary_and_equation(cls.__doc__)
    docs: dict[str, str] = {}
    for klass in cls.__mro__:  # the class's own text first, then its bases'
        for k, v in parameter_docs(klass.__dict__.get("__doc__")).items():
            docs.setdefault(k, v)
    params = []
    for pname, default in rule_parameters(cls).items():
        required = default is inspect.Parameter.empty
        params.append({"name": pname, "default": None if required else default, "required": required,
                       "doc": docs.get(pname, "")})
    return {"name": name, "class": cls.__name__, "summary": summary, "equation": equation, "parameters": params}


def rule_catalog() -> list[dict]:
    """One entry per rule of ``plasticlab.rules.RULES``, in its order:
    ``{"name", "class", "summary", "equation", "parameters": [{"name", "default", "required", "doc"}]}``."""
    from . import RULES  # imported here, not at module level, to avoid an import cycle

    return [rule_entry(name, cls) for name, cls in RULES.items()]


def format_default(p: dict) -> str:
    """A parameter's default as the rule syntax would write it (``required`` if it has none)."""
    return "required" if p.get("required") else repr(p["default"])


def format_catalog(catalog: list[dict] | None = None, width: int = 100) -> str:
    """Plain-text rendering of ``rule_catalog()`` (no terminal codes), e.g. for ``plasticlab rules > file``."""
    catalog = rule_catalog() if catalog is None else catalog
    out = ["Learning rules. Combine them with '+' and set parameters in brackets, "
           "e.g. 'bp(lr=0.01)+oja(lr=1e-3, layers=(1, 2))'.", ""]
    for entry in catalog:
        out.append(f"{entry['name']}: {entry['summary']}")
        if entry["equation"]:
            out += ["    " + line if line.strip() else "" for line in entry["equation"].splitlines()]
        if entry["parameters"]:
            out.append("  parameters:")
            for p in entry["parameters"]:
                head = f"    {p['name']} = {format_default(p)}"
                if p["doc"]:
                    out += textwrap.wrap(p["doc"], width=max(width, len(head) + 20), initial_indent=head + ": ",
                                         subsequent_indent=" " * 8, break_on_hyphens=False)
                else:
                    out.append(head)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


__all__ = ["rule_catalog", "rule_entry", "format_catalog", "format_default", "doc_sections", "parameter_docs",
           "summary_and_equation"]
