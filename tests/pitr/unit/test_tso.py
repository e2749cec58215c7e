from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tidb_pitr.tso import (
    MIN_PLAUSIBLE_TSO,
    dt_to_tso,
    lag,
    parse_cr_ts,
    parse_user_time,
    tso_iso,
    tso_str,
    tso_to_dt,
)

# From the TiDB Operator docs (seeds): a log backup's commitTs and logCheckpointTs.
COMMIT_TS = 436568622965194754
CHECKPOINT_TS = 436569119308644661


def test_doc_vectors():
    assert tso_to_dt(COMMIT_TS) == datetime(2022, 10, 10, 4, 45, 32, 283000, tzinfo=UTC)
    assert COMMIT_TS & ((1 << 18) - 1) == 2
    assert dt_to_tso(tso_to_dt(COMMIT_TS), logical=2) == COMMIT_TS
    assert tso_to_dt(CHECKPOINT_TS) == datetime(2022, 10, 10, 5, 17, 5, 683000, tzinfo=UTC)
    assert tso_iso(COMMIT_TS) == "2022-10-10T04:45:32.283Z"
    assert tso_str(COMMIT_TS) == "436568622965194754"


def test_docs_rfc3339_example():
    ts = parse_user_time("2022-10-10T15:21:00+08:00")
    assert tso_to_dt(ts) == datetime(2022, 10, 10, 7, 21, tzinfo=UTC)
    assert ts == dt_to_tso(datetime(2022, 10, 10, 7, 21, tzinfo=UTC))


@pytest.mark.parametrize("text", [
    "2026-11-21T05:30:00.000Z",  # Airflow's date-time picker
    "2026-11-21T05:30:00Z",
    "2026-11-21t05:30:00z",
    "2026-11-21T13:30:00+08:00",
    "2026-11-21 13:30:00+08:00",
    "2026-11-21 13:30:00+0800",
    "2026-11-20T23:30:00-06:00",
    "  2026-11-21T05:30:00.000000Z ",
])
def test_user_time_forms(text):
    assert parse_user_time(text) == dt_to_tso(datetime(2026, 11, 21, 5, 30, tzinfo=UTC))


def test_user_time_fraction_truncates_to_ms():
    assert tso_to_dt(parse_user_time("2026-11-21T05:30:00.123999Z")).microsecond == 123000


def test_user_time_tso():
    assert parse_user_time(str(COMMIT_TS)) == COMMIT_TS


def test_no_timezone_is_refused_with_a_hint():
    with pytest.raises(ValueError) as err:
        parse_user_time("2026-11-21 05:30:00")
    assert str(err.value) == ('restore_time: "2026-11-21 05:30:00" has no timezone; write it as '
                              "2026-11-21T05:30:00Z or 2026-11-21 05:30:00+08:00, or give a TSO")
    with pytest.raises(ValueError, match=r"^target: .*has no timezone"):
        parse_user_time("2026-11-21T05:30:00.000", field="target")


@pytest.mark.parametrize("text", ["1700000000", "42", "0"])
def test_small_integers_are_not_tsos(text):
    with pytest.raises(ValueError, match="is not a TSO"):
        parse_user_time(text)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-02-30T00:00:00Z", "2026-11-21T05:30:00+25:00",
                                  "99999999999999999999999", "1969-12-31T00:00:00Z", "2026-11-21T05:30Z"])
def test_garbage_is_refused(text):
    with pytest.raises(ValueError, match="^restore_time: "):
        parse_user_time(text)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        dt_to_tso(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        lag(COMMIT_TS, datetime(2026, 1, 1))


def test_tso_str_refuses_non_tsos():
    with pytest.raises(TypeError):
        tso_str("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tso_str(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tso_str(-1)


def test_lag():
    now = datetime(2022, 10, 10, 5, 27, 5, 683000, tzinfo=UTC)
    assert lag(CHECKPOINT_TS, now) == timedelta(minutes=10)


def test_operator_style_parsing():
    assert parse_cr_ts("") is None
    assert parse_cr_ts(None) is None
    assert parse_cr_ts(str(COMMIT_TS)) == COMMIT_TS
    assert parse_cr_ts("2022-10-10T15:21:00+08:00") == parse_user_time("2022-10-10T15:21:00+08:00")
    # The operator reads a zone-less date in its own (UTC) zone.
    assert parse_cr_ts("2022-10-10 07:21:00") == parse_user_time("2022-10-10T07:21:00Z")
    with pytest.raises(ValueError):
        parse_cr_ts("not a time")


aware = st.datetimes(min_value=datetime(2001, 9, 10), max_value=datetime(2200, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]))


@given(aware, st.integers(0, (1 << 18) - 1))
def test_round_trip(dt, logical):
    ts = dt_to_tso(dt, logical)
    assert ts >= MIN_PLAUSIBLE_TSO
    back = tso_to_dt(ts)
    assert back <= dt < back + timedelta(milliseconds=1)
    assert dt_to_tso(back, logical) == ts
    assert parse_user_time(tso_str(ts)) == ts
    assert parse_user_time(dt.isoformat()) == dt_to_tso(dt)


@given(aware, aware)
def test_order_is_kept(a, b):
    if a <= b:
        assert dt_to_tso(a) <= dt_to_tso(b)


@pytest.mark.parametrize(("text", "lacks"), [("2026-11-21 05:30", "no timezone"),
                                             ("2026-11-21T05:30Z", "no seconds")])
def test_a_time_to_the_minute_is_refused_saying_what_to_add(text, lacks):
    """As people type a time: refused like any incomplete time, with the line to write instead."""
    with pytest.raises(ValueError) as err:
        parse_user_time(text)
    assert str(err.value) == (f'restore_time: "{text}" has {lacks}; write it as 2026-11-21T05:30:00Z or '
                              "2026-11-21 05:30:00+08:00, or give a TSO")
