"""What the probes answer, from the processor's account of itself."""

from __future__ import annotations

from streams.health import Health, status


def test_a_worker_polling_in_its_group_with_its_tables_restored_is_healthy_and_ready() -> None:
    health = Health(polled_at=100.0, member=True, restoring=0)
    assert status(health, 101.0, 10.0, broker_answers=True) == (True, True, [])


def test_a_worker_restoring_its_tables_is_alive_but_not_ready() -> None:
    health = Health(polled_at=100.0, member=True, restoring=3)
    assert status(health, 101.0, 10.0, broker_answers=True) == (
        True, False, ["restoring the tables of 3 partitions"])
    healthy, ready, _ = status(Health(polled_at=100.0, member=True), 101.0, 10.0, True)
    assert healthy and not ready  # joined, nothing assigned yet


def test_a_stalled_loop_a_lost_group_or_a_silent_broker_is_unhealthy() -> None:
    health = Health(polled_at=100.0, member=True, restoring=0)
    assert status(health, 111.0, 10.0, broker_answers=True)[:2] == (False, False)
    assert status(health, 101.0, 10.0, broker_answers=False)[2] == [
        "the broker does not answer"]
    lost = Health(polled_at=100.0, member=False, restoring=0)
    assert status(lost, 101.0, 10.0, broker_answers=True)[2] == [
        "not a member of the consumer group"]
    assert status(Health(), 0.0, 10.0, broker_answers=True)[0] is False
