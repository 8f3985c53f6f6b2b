"""The evaluators generated for the shipped rules, as source: a change to the generator
shows here as a diff to read, not only as a changed score somewhere.

After an intended change, write the snapshot again with
`LEADSCORE_UPDATE_SNAPSHOTS=1 pytest tests/test_evaluator_snapshot.py` and review its diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from scoring_rules.evaluators import evaluator_source
from tests.scoring_events import default_rules

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "default_evaluators.py.txt"


def generated() -> str:
    rules = default_rules()
    types = sorted({*rules.behavior, *rules.fit})
    return "\n\n".join(evaluator_source(rules, event_type) for event_type in [*types, None])


def test_the_shipped_rules_generate_the_reviewed_evaluators() -> None:
    source = generated()
    if os.environ.get("LEADSCORE_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(source)
    assert source == SNAPSHOT.read_text(), (
        f"the generated evaluators differ from {SNAPSHOT.name}; if intended, see the module doc")
    compile(source, str(SNAPSHOT), "exec")  # and they are valid Python
