"""SQL templates and the one renderer every reader of the lake uses.

A template is a ``.sql`` file in this folder defining a relation over named inputs written
as placeholders: ``{spans_table}`` (an input the caller binds: a pinned table version, a few
traces of it, the service store's tables) or ``{trace_spans}`` (another template). A
placeholder may rebind an input for one use: ``{trace_spans(spans_table=spans_of_traces)}``
is ``trace_spans`` computed over the relation of template ``spans_of_traces``. Comments are
not rendered, so a header can name the inputs it documents in braces.

The views (``schemas/views``), the service's task store and Spark render the same files over
their own inputs, so every engine computes every figure from the same text. In a catalog
(``views``: the templates that exist as views of their own name), a template is referred to by
name unless a rebinding reaches it, which inlines it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

PACKAGE = "schemas.templates"
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\(([^{}()]*)\))?\}")


@cache
def sql_file(package: str, name: str) -> str:
    """The text of ``<package>/<name>.sql``."""
    return resources.files(package).joinpath(f"{name}.sql").read_text(encoding="utf-8")


@cache
def is_template(name: str) -> bool:
    return resources.files(PACKAGE).joinpath(f"{name}.sql").is_file()


@cache
def inputs(name: str) -> frozenset[str]:
    """Every input placeholder ``name`` reads, through the templates it uses."""
    found: set[str] = set()
    for line in sql_file(PACKAGE, name).splitlines():
        if line.lstrip().startswith("--"):
            continue
        for m in _PLACEHOLDER.finditer(line):
            ref = m.group(1)
            if is_template(ref):
                found |= inputs(ref)
                if m.group(2):
                    for _, target in _rebindings(m.group(2)):
                        found |= inputs(target) if is_template(target) else {target}
            else:
                found.add(ref)
    return frozenset(found)


def _rebindings(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(","):
        key, _, value = part.partition("=")
        if not key.strip() or not value.strip():
            raise ValueError(f"bad template rebinding {text!r}")
        out.append((key.strip(), value.strip()))
    return out


def substitute(text: str, bindings: Mapping[str, str], views: frozenset[str] = frozenset()) -> str:
    """``text`` with every placeholder outside ``--`` comments resolved (see module doc)."""

    def resolve(m: re.Match[str]) -> str:
        name, args = m.group(1), m.group(2)
        if args:
            local = dict(bindings)
            for key, target in _rebindings(args):
                local[key] = (
                    f"({render(target, bindings, views)})" if is_template(target) else target
                )
            changed = {key for key, _ in _rebindings(args)}
            inner = frozenset(v for v in views if not (inputs(v) & changed))
            return f"({render(name, local, inner)})"
        if name in bindings:
            return bindings[name]
        if name in views:
            return name
        if is_template(name):
            return f"({render(name, bindings, views)})"
        raise KeyError(f"no binding for {{{name}}}")

    lines = []
    for raw in text.splitlines():
        lines.append(raw if raw.lstrip().startswith("--") else _PLACEHOLDER.sub(resolve, raw))
    return "\n".join(lines).strip()


def render(
    name: str, bindings: Mapping[str, str] | None = None, views: frozenset[str] = frozenset()
) -> str:
    """The template ``name`` with its placeholders resolved."""
    return substitute(sql_file(PACKAGE, name), bindings or {}, views)
