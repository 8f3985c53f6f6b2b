"""Hypothesis strategies for hostile input: what a careless or malicious sender writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from streams.sources import discover_sources

SOURCES = discover_sources()

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
#: Any JSON document (with integers past 64 bits and NaN, which `dumps` writes).
documents = st.recursive(_scalars, lambda children: st.lists(children, max_size=4)
                         | st.dictionaries(st.text(max_size=12), children, max_size=4),
                         max_leaves=20)
_FIELDS = sorted({name for source in SOURCES.values() for name in source.payload.model_fields})
#: Objects with the payload models' own field names, so fuzzing reaches past the first check.
payloads = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), documents,
                           max_size=8)


def dumps(document: Any) -> bytes:
    """Any document as JSON text: integers past 64 bits and NaN included, as a hostile
    sender may write them (`json` writes what `orjson` refuses to)."""
    return json.dumps(document).encode()


#: A valid event whose prospect identifies an anonymous visitor.
VALID_EVENT = {"id": "ok-1", "type": "web.page_view", "occurred_at": "2026-03-02T10:00:00Z",
               "prospect": {"email": "ana@acme.example", "anonymous_id": "v1"},
               "properties": {"url": "https://acme.example/pricing", "visit_id": "s1"}}
#: Messages for the `events` topic: any JSON, and message-shaped objects with wrong parts.
events_messages = st.one_of(
    documents,
    st.fixed_dictionaries({"kind": st.sampled_from(["event", "claim", "absorb", "nope"])},
                          optional={"event": st.one_of(documents, st.just(VALID_EVENT).map(
                              lambda v: {**v, "occurred_at": "9999-12-31T23:59:59-01:00"})),
                              "into": documents, "source": documents, "state": documents}),
)
