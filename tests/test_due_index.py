from datetime import UTC, datetime, timedelta

from streams.due_index import DueIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_pops_only_keys_due_in_time_order() -> None:
    index = DueIndex()
    index.schedule("late", T0 + timedelta(days=3))
    index.schedule("early", T0 + timedelta(days=1))
    index.schedule("never", None)
    assert index.pop_due(T0) == []
    assert index.pop_due(T0 + timedelta(days=5)) == ["early", "late"]
    assert len(index) == 0


def test_rescheduling_replaces_the_old_due_time() -> None:
    index = DueIndex()
    index.schedule("p", T0 + timedelta(days=1))
    index.schedule("p", T0 + timedelta(days=10))
    assert index.pop_due(T0 + timedelta(days=2)) == []
    assert index.pop_due(T0 + timedelta(days=10)) == ["p"]


def test_clearing_a_key_removes_it() -> None:
    index = DueIndex()
    index.schedule("p", T0)
    index.schedule("p", None)
    assert index.pop_due(T0 + timedelta(days=1)) == []


def test_stale_entries_are_compacted_away() -> None:
    index = DueIndex()
    for day in range(5000):
        index.schedule("p", T0 + timedelta(days=day))
    assert len(index._heap) < 2000
    assert index.pop_due(T0 + timedelta(days=10_000)) == ["p"]
