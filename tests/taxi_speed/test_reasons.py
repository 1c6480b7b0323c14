"""Rejection reasons, period, grouping, taxi type, rejected rows and --compat on tiny inline files.

Expected values are worked out by hand from the job's definition.
"""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance\n"

# (row, expected reason or "" for valid); 2017-03-05 is a Sunday.
ROWS = [
    ("1,2017-03-05 10:00:00,2017-03-05 10:30:00,1,5", ""),  # 10 mph
    ("1,2017-03-06 08:00:00,2017-03-06 09:00:00,1,20", ""),  # 20 mph, Monday
    ("1,2017-03-06 23:15:00,2017-03-07 00:15:00,1,12", ""),  # 12 mph, crosses midnight, keyed on pickup
    ("1,not a time,2017-03-06 09:00:00,1,3", "unparseable"),
    ("1,2017-03-06 08:00:00,2017-03-06 09:00:00,1,abc", "unparseable"),
    ("1,2017-03-06 08:00:00,,1,3", "unparseable"),
    ("1,2017-02-30 08:00:00,2017-03-06 09:00:00,1,3", "unparseable"),  # no such date
    ("1,2017-03-06 08:00:00", "unparseable"),  # row cut short
    ("1,2017-03-06 08:00:00,2017-03-06 09:00:00,1,0", "non_positive_distance"),
    ("1,2017-03-06 08:00:00,2017-03-06 07:00:00,1,-1", "non_positive_distance"),  # also negative duration
    ("1,2017-03-06 08:00:00,2017-03-06 08:00:00,1,0", "non_positive_distance"),  # also zero duration
    ("1,2017-03-06 08:00:00,2017-03-06 08:00:00,1,2", "non_positive_duration"),
    ("1,2017-03-06 08:00:00,2017-03-06 07:59:00,1,2", "non_positive_duration"),
    ("1,2017-03-06 08:00:00,2017-03-07 09:00:00,1,100", "too_long"),  # 25 h
    ("1,2017-03-06 08:00:00,2017-03-07 09:00:00,1,5000", "too_long"),  # 25 h and 200 mph
    ("1,2017-03-06 08:00:00,2017-03-06 08:10:00,1,30", "too_fast"),  # 180 mph
    ("1,2017-03-06 08:00:00,2017-03-06 09:00:00,1,100.5", "too_fast"),  # just above 100 mph
    ("1,2017-03-06 08:00:00,2017-03-06 09:00:00,1,100", ""),  # exactly 100 mph is valid
    ("1,2017-03-06 08:00:00,2017-03-07 08:00:00,1,24", ""),  # exactly 24 h is valid
]
REASONS = ("unparseable", "other_taxi_type", "outside_period", "non_positive_distance",
           "non_positive_duration", "too_long", "too_fast")


@pytest.fixture
def trips_csv(write_csv):
    return write_csv("trips.csv", HEADER + "\n".join(row for row, _ in ROWS) + "\n")


def expected_counts(reasons: list[str]) -> dict:
    return {
        "read": len(reasons),
        "valid": reasons.count(""),
        "rejected": {reason: reasons.count(reason) for reason in REASONS},
    }


def test_every_reason_counted_once(sdpipe, trips_csv, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "out", "--json")

    assert run.exit_code == 0, run.stderr
    document = run.json()
    counts = document["counts"]
    assert {k: counts[k] for k in ("read", "valid", "rejected")} == expected_counts([r for _, r in ROWS])
    assert counts["read"] == counts["valid"] + sum(counts["rejected"].values())
    assert document["inputs"][0]["counts"]["rejected"] == counts["rejected"]


def test_valid_trips_per_date(sdpipe, trips_csv, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "out", "--json")

    result = run.json()["result"]
    assert [row["date"] for row in result] == ["2017-03-05", "2017-03-06"]
    sunday, monday = result
    assert sunday["trips"] == 1
    assert sunday["mean_speed_mph"] == pytest.approx(10.0, rel=1e-12)
    assert sunday["distance_weighted_speed_mph"] == pytest.approx(10.0, rel=1e-12)
    # Monday: 20, 12, 100 and 1 mph; miles 20+12+100+24 over hours 1+1+1+24.
    assert monday["trips"] == 4
    assert monday["mean_speed_mph"] == pytest.approx((20 + 12 + 100 + 1) / 4, rel=1e-12)
    assert monday["distance_weighted_speed_mph"] == pytest.approx(156 / 27, rel=1e-12)


def test_limits_change_reasons(sdpipe, trips_csv, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "out", "--json",
                 "--max-hours", "25", "--max-mph", "150")

    rejected = run.json()["counts"]["rejected"]
    assert rejected["too_long"] == 0  # 25 h is now allowed
    assert rejected["too_fast"] == 2  # 180 and 200 mph; 100.5 mph is now valid


@pytest.mark.parametrize(
    ("arguments", "outside", "dates"),
    [
        (("--start", "2017-03-06"), 1, ["2017-03-06"]),
        (("--end", "2017-03-05"), 13, ["2017-03-05"]),
        (("--start", "2017-03-05", "--end", "2017-03-05"), 13, ["2017-03-05"]),
        (("--start", "2017-03-07"), 14, []),
    ],
    ids=["start", "end", "one-day", "after-all"],
)
def test_period_rejects_by_pickup_date(sdpipe, trips_csv, tmp_path, arguments, outside, dates):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "out", "--json", *arguments)

    assert run.exit_code == 0, run.stderr
    document = run.json()
    assert document["counts"]["rejected"]["outside_period"] == outside
    assert document["counts"]["rejected"]["unparseable"] == 5  # unparseable comes first
    assert [row["date"] for row in document["result"]] == dates


def test_period_comes_before_distance(sdpipe, write_csv, tmp_path):
    path = write_csv("t.csv", HEADER + "1,2017-03-05 10:00:00,2017-03-05 10:00:00,1,0\n")

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json", "--start", "2017-03-06")

    assert run.json()["counts"]["rejected"]["outside_period"] == 1


def test_start_after_end_is_usage_error(sdpipe, trips_csv, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "o", "--start", "2017-03-07", "--end", "2017-03-06")

    assert run.exit_code == 2
    assert "start 2017-03-07 is after end 2017-03-06" in run.stderr


GROUP_CSV = HEADER + "\n".join(
    [
        "1,2017-03-05 23:30:00,2017-03-06 00:30:00,1,10",  # Sunday, 23h, March: 10 mph
        "1,2017-03-11 23:00:00,2017-03-11 23:30:00,1,10",  # Saturday, 23h, March: 20 mph
        "1,2017-04-02 08:00:00,2017-04-02 10:00:00,1,10",  # Sunday, 8h, April: 5 mph
    ]
) + "\n"


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("date", [("2017-03-05", 1, 10.0, 10.0), ("2017-03-11", 1, 20.0, 20.0), ("2017-04-02", 1, 5.0, 5.0)]),
        ("weekday", [(0, 2, 7.5, 20 / 3), (6, 1, 20.0, 20.0)]),
        ("hour", [(8, 1, 5.0, 5.0), (23, 2, 15.0, 20 / 1.5)]),
        ("month", [("2017-03", 2, 15.0, 20 / 1.5), ("2017-04", 1, 5.0, 5.0)]),
    ],
)
def test_group_by_keys(sdpipe, write_csv, tmp_path, group_by, expected):
    path = write_csv("g.csv", GROUP_CSV)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json", "--group-by", group_by)

    assert run.exit_code == 0, run.stderr
    result = run.json()["result"]
    assert [tuple(row) for row in result] == [(group_by, "trips", "mean_speed_mph", "distance_weighted_speed_mph")] * len(result)
    got = [(r[group_by], r["trips"], r["mean_speed_mph"], r["distance_weighted_speed_mph"]) for r in result]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    for g, e in zip(got, expected):
        assert g[2] == pytest.approx(e[2], rel=1e-12)
        assert g[3] == pytest.approx(e[3], rel=1e-12)


COLOR_CSV = (
    "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance,color\n"
    "2019-03-01 10:00:00,2019-03-01 11:00:00,10,yellow\n"
    "2019-03-01 10:00:00,2019-03-01 11:00:00,30, Yellow \n"
    "2019-03-01 10:00:00,2019-03-01 11:00:00,4,green\n"
    "2019-03-01 10:00:00,2019-03-01 10:00:00,4,green\n"  # zero duration, but of the other type first
    "bad,2019-03-01 11:00:00,4,green\n"  # unparseable comes before the taxi type
)


@pytest.mark.parametrize(
    ("taxi_type", "valid", "other", "mean"),
    [("all", 3, 0, (10 + 30 + 4) / 3), ("yellow", 2, 2, 20.0), ("green", 1, 2, 4.0)],
)
def test_taxi_type_selects_by_color(sdpipe, write_csv, tmp_path, taxi_type, valid, other, mean):
    path = write_csv("c.csv", COLOR_CSV)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json", "--taxi-type", taxi_type)

    counts = run.json()["counts"]
    assert counts["valid"] == valid
    assert counts["rejected"]["other_taxi_type"] == other
    assert counts["rejected"]["unparseable"] == 1
    assert run.json()["result"][0]["mean_speed_mph"] == pytest.approx(mean, rel=1e-12)


@pytest.mark.realdata
@pytest.mark.parametrize("taxi_type", ["yellow", "green"])
def test_taxi_type_on_mixed_real_file(sdpipe, real_data, reference, tmp_path, taxi_type):
    path = real_data / "seaborn_data" / "raw_taxis.csv"
    classified = reference.classify(reference.read_trips(path), taxi_type=taxi_type)
    expected_rows = reference.result(classified)

    run = sdpipe("run", "taxi-speed", "-i", path, "-o", tmp_path / "o", "--json", "--taxi-type", taxi_type)

    document = run.json()
    assert {k: document["counts"][k] for k in ("read", "valid", "rejected")} == reference.counts(classified)
    assert document["counts"]["rejected"]["other_taxi_type"] == {"yellow": 1000, "green": 5500}[taxi_type]
    assert [r["date"] for r in document["result"]] == [r["date"] for r in expected_rows]
    for got, expected in zip(document["result"], expected_rows):
        assert got["trips"] == expected["trips"]
        assert math.isclose(got["mean_speed_mph"], expected["mean_speed_mph"], rel_tol=1e-9)


def test_rejected_output_lists_rows_with_reason(sdpipe, trips_csv, tmp_path):
    run = sdpipe("run", "taxi-speed", "-i", trips_csv, "-o", tmp_path / "out",
                 "--rejected-output", tmp_path / "rejected", "--json")

    assert run.exit_code == 0, run.stderr
    table = pq.read_table(tmp_path / "rejected" / "rejected.parquet").to_pylist()
    expected = sorted(reason for _, reason in ROWS if reason)
    assert sorted(row["reason"] for row in table) == expected
    assert {row["file"] for row in table} == {str(trips_csv)}
    short = [row for row in table if row["raw_row"] is not None]
    assert [row["raw_row"] for row in short] == ["1,2017-03-06 08:00:00"]
    by_distance = {row["distance"]: row["reason"] for row in table if row["raw_row"] is None and row["distance"]}
    assert by_distance[30.0] == "too_fast"
    assert by_distance[5000.0] == "too_long"
    assert by_distance[-1.0] == "non_positive_distance"


def test_rejected_output_from_python_api(trips_csv, tmp_path):
    from sdpipe import taxi_speed

    frame = taxi_speed(str(trips_csv), rejected_output=str(tmp_path / "rejected"))

    assert len(pq.read_table(tmp_path / "rejected" / "rejected.parquet")) == sum(1 for _, r in ROWS if r)
    assert frame.attrs["counts"]["valid"] == 5


# --compat azure-sample: per file, the mean of trip speeds per weekday over trips with
# distance > 0 and a finite speed (no bounds), 0 for a weekday without trips; then the
# plain mean over files.  2017-03-05 is a Sunday, 2017-03-06 a Monday.
COMPAT_A = HEADER + "\n".join(
    [
        "1,2017-03-05 10:00:00,2017-03-05 11:00:00,1,10",  # 10 mph
        "1,2017-03-05 10:00:00,2017-03-05 10:30:00,1,10",  # 20 mph
        "1,2017-03-05 10:00:00,2017-03-05 09:30:00,1,5",  # -10 mph: negative speeds are kept
        "1,2017-03-05 10:00:00,2017-03-05 10:06:00,1,30",  # 300 mph: no upper bound
        "1,2017-03-05 10:00:00,2017-03-05 10:00:00,1,5",  # infinite speed: left out
        "1,2017-03-05 10:00:00,2017-03-05 11:00:00,1,0",  # distance 0: left out
        "1,not a time,2017-03-05 11:00:00,1,3",  # unreadable: left out
    ]
) + "\n"
COMPAT_B = HEADER + "\n".join(
    [
        "1,2017-03-05 10:00:00,2017-03-05 11:00:00,1,30",  # Sunday 30 mph
        "1,2017-03-06 10:00:00,2017-03-06 11:00:00,1,40",  # Monday 40 mph
    ]
) + "\n"


def test_compat_azure_sample_arithmetic(sdpipe, write_csv, tmp_path):
    a = write_csv("in/a.csv", COMPAT_A)
    write_csv("in/b.csv", COMPAT_B)
    file_a = [(10 + 20 - 10 + 300) / 4, 0, 0, 0, 0, 0, 0]
    file_b = [30, 40, 0, 0, 0, 0, 0]
    expected = [(x + y) / 2 for x, y in zip(file_a, file_b)]

    run = sdpipe("run", "taxi-speed", "-i", a.parent, "-o", tmp_path / "o", "--compat", "azure-sample", "--json")

    assert run.exit_code == 0, run.stderr
    result = run.json()["result"]
    assert [row["weekday"] for row in result] == list(range(7))
    assert [set(row) for row in result] == [{"weekday", "mean_speed_mph"}] * 7
    for row, value in zip(result, expected):
        assert row["mean_speed_mph"] == pytest.approx(value, rel=1e-12)
    assert "Sun: 55, Mon: 20, Tue : 0, wed: 0, Thu: 0, Fri: 0, Sat: 0" in run.stderr
    assert run.json()["compat_text"] == "Sun: 55, Mon: 20, Tue : 0, wed: 0, Thu: 0, Fri: 0, Sat: 0"


def test_compat_counts_an_empty_file_as_zeros(sdpipe, write_csv, tmp_path):
    """Each file is one mapper in the sample, so a file without trips pulls every mean down."""
    write_csv("in/b.csv", COMPAT_B)
    write_csv("in/empty.csv", HEADER)

    run = sdpipe("run", "taxi-speed", "-i", tmp_path / "in", "-o", tmp_path / "o", "--compat", "azure-sample", "--json")

    assert [row["mean_speed_mph"] for row in run.json()["result"]] == [15.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.realdata
def test_compat_on_real_files_matches_reference(sdpipe, real_data, reference, tmp_path):
    folder = real_data / "great_expectations_taxi_samples"
    paths = [folder / f"yellow_tripdata_sample_{month}.csv" for month in ("2018-01", "2019-07", "2020-04")]
    paths.append(real_data / "google_ada_automatidata" / "Yellow_Taxi_Trip_Data_excel_resaved.csv")
    expected = reference.compat_weekday_means([reference.classify(reference.read_trips(p)) for p in paths])
    arguments = [a for p in paths for a in ("-i", p)]

    run = sdpipe("run", "taxi-speed", *arguments, "-o", tmp_path / "o", "--compat", "azure-sample", "--json")

    result = run.json()["result"]
    assert len(result) == 7
    for row, value in zip(result, expected):
        assert math.isclose(row["mean_speed_mph"], value, rel_tol=1e-9)
