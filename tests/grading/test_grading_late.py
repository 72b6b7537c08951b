"""Late submissions (lrpkit.grading.late): policies, penalties, the times file."""

from datetime import datetime, timedelta, timezone

import pytest

from lrpkit.grading.late import LateError, Policy, Rule, parse_time, read_times, utc_text

DUE = datetime(2025, 6, 30, 23, 59, tzinfo=timezone.utc)


def started_units(delay, unit):
    """The literal count: step one unit at a time until the delay is covered."""
    units, covered = 0, timedelta(0)
    while covered < delay:
        covered += unit
        units += 1
    return units


@pytest.mark.parametrize(
    "minutes", [1, 59, 60, 61, 24 * 60 - 1, 24 * 60, 24 * 60 + 1, 3 * 24 * 60 + 7]
)
def test_a_percentage_per_started_day_or_hour(minutes):
    delay = timedelta(minutes=minutes)
    for text, unit in (("10%/day", timedelta(days=1)), ("2.5%/hour", timedelta(hours=1))):
        percent, why = Policy.parse(text).penalty(delay)
        rate = 10 if unit.days else 2.5
        assert percent == pytest.approx(min(100, rate * started_units(delay, unit)))
        assert why.startswith(f"-{percent:g}%")


def test_grace_limit_cap_zero_and_none():
    policy = Policy.parse("10%/day,grace=15m,max=3d,cap=25%")
    assert policy.penalty(timedelta(minutes=15)) == (0.0, "")
    assert policy.penalty(timedelta(minutes=16))[0] == 10
    assert policy.penalty(timedelta(days=2, hours=1))[0] == 25  # 30 % capped
    percent, why = policy.penalty(timedelta(days=3, minutes=1))
    assert (percent, why) == (100, "more than 3 d late: not accepted, 0 points")
    assert Policy.parse("zero").penalty(timedelta(seconds=1))[0] == 100
    assert Policy.parse("none").penalty(timedelta(days=9)) == (0.0, "")


@pytest.mark.parametrize(
    "text", ["10%/week", "10%", "ten%/day", "10%/day,max=3", "10%/day,foo=1", "150%/day"]
)
def test_policies_that_cannot_be_read_say_how_to_write_one(text):
    with pytest.raises(LateError, match="--late"):
        Policy.parse(text)


def test_the_rule_gives_each_submission_its_record():
    rule = Rule(DUE, Policy.parse("10%/day"))
    on_time = rule.judge(DUE - timedelta(hours=1))
    assert (on_time.late, on_time.percent, on_time.apply(40)) == ("", 0.0, 40)
    late = rule.judge(DUE + timedelta(days=1, hours=2, minutes=5))
    assert (late.late, late.percent, late.apply(40)) == ("1 d 2 h 5 min", 20, 32)
    assert late.text == "1 d 2 h 5 min late; -20% (2 started days x 10%)"
    marked = rule.judge(None, marked=True)
    assert (marked.late, marked.percent) == ("late (time unknown)", 10)
    assert "give --times" in marked.text
    assert rule.judge(None).percent == 0


def test_times_and_the_times_file(tmp_path):
    assert parse_time("2025-06-30T23:59:00Z") == DUE
    assert parse_time("2025-07-01T01:59:00+02:00") == DUE
    assert parse_time("2025-06-30T23:59:00").tzinfo is not None  # local time
    assert utc_text(parse_time("2025-07-01T01:59:00.5+02:00")) == "2025-06-30T23:59:00Z"
    path = tmp_path / "times.csv"
    path.write_text("student,submitted\nann,2025-06-30T23:59:00Z\nbob,2025-07-01T00:00Z\n")
    assert read_times(path) == {"ann": DUE, "bob": DUE + timedelta(minutes=1)}
    path.write_text("student,submitted\nann,yesterday\n")
    with pytest.raises(LateError, match="line 2: 'yesterday' is not an ISO 8601"):
        read_times(path)
    path.write_text("student,submitted\nann,2025-06-30T23:59:00Z\nann,2025-06-30T23:59:00Z\n")
    with pytest.raises(LateError, match="line 3: ann appears twice"):
        read_times(path)
    path.write_text("id,time\nann,2025-06-30T23:59:00Z\n")
    with pytest.raises(LateError, match="needs the columns student and submitted"):
        read_times(path)
