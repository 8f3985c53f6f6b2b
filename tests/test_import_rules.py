"""Which package may import which: the rule of docs/development.md, checked on the code.

Read with `ast`, not by importing: a rule broken in a module no test imports is caught too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Package -> the top-level packages of this project it must never import. The ground
#: (`leadscore`: shared words, settings, Kafka helpers) imports no area; an area imports the
#: ground and itself (`streams` also `scoring_rules`' public API); only the composition root
#: (`app`) imports every area. Benchmarks and tests share nothing but the product.
AREAS = {"streams", "scoring_rules", "routing"}
FORBIDDEN = {
    "leadscore": {"app", *AREAS},
    "scoring_rules": {"app", "streams", "routing"},
    "routing": {"app", "streams", "scoring_rules"},
    "streams": {"app", "routing"},
    "bench": {"tests"},
    "tests": {"bench"},
}


def imports(package: str) -> Iterator[tuple[str, int, str]]:
    """(file, line, imported top-level package) for every import in `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield str(path.relative_to(ROOT)), node.lineno, name.partition(".")[0]


def test_no_package_imports_what_the_rule_forbids() -> None:
    broken = [f"{file}:{line}: {package} imports {imported}"
              for package, forbidden in FORBIDDEN.items()
              for file, line, imported in imports(package) if imported in forbidden]
    assert broken == [], "\n".join(broken)
