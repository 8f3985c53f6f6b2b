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


def test_a_stalled_loop_is_unhealthy() -> None:
    health = Health(polled_at=100.0, member=True, restoring=0)
    assert status(health, 111.0, 10.0, broker_answers=True)[:2] == (False, False)
    assert status(Health(), 0.0, 10.0, broker_answers=True)[0] is False


def test_a_worker_waiting_for_the_broker_or_its_group_is_alive_but_not_ready() -> None:
    """A liveness probe failing then would restart healthy workers waiting for Kafka."""
    health = Health(polled_at=100.0, member=True, restoring=0)
    assert status(health, 101.0, 10.0, broker_answers=False) == (
        True, False, ["the broker does not answer"])
    lost = Health(polled_at=100.0, member=False, restoring=0)
    assert status(lost, 101.0, 10.0, broker_answers=False) == (
        True, False, ["not a member of the consumer group", "the broker does not answer"])
