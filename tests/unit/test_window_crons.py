"""The window schedule's cron expressions (dag_factory.window_crons): every interval fires exactly at
start, start + interval, ... up to the end, and stays a few expressions, so the timetable's
description fits the 1,000 characters Airflow's dag table keeps (a 1-minute interval used to make
60 expressions and a description of 3,228 characters, which stopped the dag-processor on PostgreSQL).
The config takes only intervals that divide 60 or are multiples of 15: 13 would need an expression
per hour."""

from __future__ import annotations

import pendulum
import pytest

from king_qics.config import Schedule
from king_qics.dag_factory import window_crons


def fire_times(crons: list[str], day: pendulum.DateTime) -> list[str]:
    """The times of ``day`` Airflow's own timetable runs these crons at (Amsterdam time)."""
    from airflow.sdk import MultipleCronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = coerce_to_core_timetable(MultipleCronTriggerTimetable(*crons, timezone="Europe/Amsterdam"))
    restriction = TimeRestriction(earliest=day, latest=day.add(days=1).subtract(seconds=1), catchup=True)
    times, last = [], None
    while True:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            return times
        times.append(info.run_after.in_timezone("Europe/Amsterdam").strftime("%H:%M"))
        last = DataInterval(info.run_after, info.run_after)


@pytest.mark.parametrize("interval", [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 45, 60, 90, 240, 1440])
@pytest.mark.parametrize("window", [("07:00", "20:00"), ("06:30", "18:45")])
def test_every_interval_fires_at_exactly_the_window_times_in_a_few_expressions(interval, window):
    from airflow.sdk import MultipleCronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    start, end = window
    first = int(start[:2]) * 60 + int(start[3:])
    last = int(end[:2]) * 60 + int(end[3:])
    expected = [f"{m // 60:02d}:{m % 60:02d}" for m in range(first, last + 1, interval)]
    crons = window_crons(start, end, interval)
    assert fire_times(crons, pendulum.datetime(2026, 3, 28, tz="Europe/Amsterdam")) == expected
    assert len(crons) <= 16, crons  # one per set of hours a minute fires in
    timetable = coerce_to_core_timetable(MultipleCronTriggerTimetable(*crons, timezone="Europe/Amsterdam"))
    assert len(timetable.description) < 1000, timetable.description


@pytest.mark.parametrize("interval", [7, 13, 25, 50, 100])
def test_an_interval_that_needs_an_expression_per_hour_is_refused_in_the_config(interval):
    with pytest.raises(ValueError, match=f"must divide 60 .* or be a multiple of 15, not {interval}"):
        Schedule(interval_minutes=interval)
