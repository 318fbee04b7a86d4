"""Regenerate README's generated tables (``python -m service.docs``); a test keeps them fresh."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from schemas.settings import settings_table, workflow_rules_table
from schemas.spans import columns_doc

TABLES = {
    "settings-table": settings_table,
    "workflow-rules-table": workflow_rules_table,
    "columns-table": columns_doc,
}


def render(readme: str) -> str:
    for marker, make in TABLES.items():
        pattern = re.compile(
            rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", flags=re.DOTALL
        )
        table = make()

        def fill(m: re.Match[str], table: str = table) -> str:
            return m.group(1) + table + "\n" + m.group(2)

        readme = pattern.sub(fill, readme)
    return readme


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
