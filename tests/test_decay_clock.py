from datetime import UTC, datetime, timedelta

from streams.decay_clock import PartitionClock, tick_time

WALL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAST = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_partition_with_events_in_flight_decays_only_up_to_its_stream_time() -> None:
    clock = PartitionClock(last_message=100.0)
    clock.saw(101.0, PAST)
    clock.saw(101.5, PAST - timedelta(days=3))  # a late event does not move time back
    assert tick_time(clock, WALL, monotonic=102.0, idle_seconds=60) == PAST


def test_nothing_is_decayed_before_the_first_event_of_a_busy_partition() -> None:
    clock = PartitionClock(last_message=100.0)
    assert tick_time(clock, WALL, monotonic=101.0, idle_seconds=60) is None


def test_an_idle_partition_decays_up_to_the_wall_clock() -> None:
    clock = PartitionClock(last_message=100.0)
    clock.saw(101.0, PAST)
    assert tick_time(clock, WALL, monotonic=161.0, idle_seconds=60) == WALL


def test_stream_time_never_runs_ahead_of_the_wall_clock() -> None:
    clock = PartitionClock(last_message=100.0)
    clock.saw(100.0, WALL + timedelta(days=1))  # a sender's clock ahead of ours
    assert tick_time(clock, WALL, monotonic=101.0, idle_seconds=60) == WALL
