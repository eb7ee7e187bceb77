"""`macros` in the context: Airflow 3's names and results (airflow.sdk.execution_time.macros)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.execution.context import MACROS


def test_airflow_macros_give_airflows_results() -> None:
    assert MACROS.ds_add("2015-01-01", 5) == "2015-01-06" and MACROS.ds_add("2015-01-06", -5) == "2015-01-01"
    assert MACROS.ds_add("not a date", 0) == "not a date", "0 days: the ds back untouched, as Airflow's"
    assert MACROS.ds_format("1/5/2015", "%m/%d/%Y", "%Y-%m-%d") == "2015-01-05"
    now = datetime.now(UTC)
    assert MACROS.datetime_diff_for_humans(now - timedelta(days=2)) == "2 days ago"
    assert MACROS.datetime_diff_for_humans(now, now - timedelta(hours=3)) == "3 hours after"
    assert MACROS.dateutil.relativedelta.relativedelta(months=1).months == 1
    assert MACROS.dateutil.parser.isoparse("2026-01-05").day == 5 and MACROS.dateutil.tz.UTC is not None
    assert 0 <= MACROS.random() < 1 and MACROS.uuid.uuid4() and MACROS.json.loads("[1]") == [1]
    assert MACROS.time.time() > 0 and MACROS.datetime(2026, 1, 1).year == 2026 and MACROS.timedelta(days=1).days == 1
