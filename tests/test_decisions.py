"""The decision records' one owner: every type named in `leadscore.decisions`, read back by
one reader."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from leadscore.decisions import DECISION_TYPES, PROSPECT_PROMOTED, read_decision

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("leadscore", "streams", "scoring_rules", "routing", "bench")


def test_read_decision_takes_every_known_type_and_refuses_anything_else() -> None:
    for kinds in DECISION_TYPES.values():
        for kind in kinds:
            assert read_decision(orjson.dumps({"type": kind}))["type"] == kind
    for bad in (b"not json", b"[1, 2]", b'{"no": "type"}', b'{"type": "lead.teleported"}'):
        with pytest.raises(ValueError):
            read_decision(bad)
    assert read_decision(orjson.dumps({"type": PROSPECT_PROMOTED, "x": 1}))["x"] == 1


def test_no_product_module_spells_a_decision_type_but_the_owner() -> None:
    kinds = [kind for kinds in DECISION_TYPES.values() for kind in kinds]
    spelled = re.compile("[\"'](" + "|".join(re.escape(kind) for kind in kinds) + ")[\"']")
    owner = ROOT / "leadscore" / "decisions.py"
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
             if path != owner
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if spelled.search(line)]
    assert found == [], "use the constants of leadscore.decisions:\n" + "\n".join(found)
