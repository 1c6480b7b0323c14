"""The trip reader: header versions, CSV dialects, timestamp layouts, parquet types, byte ranges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdpipe.io.files import expand_inputs
from sdpipe.io.trip_values import parse_numbers, parse_timestamps
from sdpipe.io.trips import PartitionData, inspect_file, plan_partitions, read_partition
from sdpipe.pipelines.taxi_speed.api import run_taxi_speed

T = dt.datetime


def read_all(path: Path, blocksize: int = 64 * 1024 * 1024) -> tuple[list[PartitionData], object]:
    (file,) = expand_inputs(str(path))
    layout = inspect_file(file)
    return [read_partition(p) for p in plan_partitions(layout, blocksize=blocksize)], layout


def read_one(path: Path) -> PartitionData:
    parts, _ = read_all(path)
    assert len(parts) == 1
    return parts[0]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- header versions ---------------------------------------------------------------

# The first data row of each TLC header version, as published.
HEADERS = {
    "2009": "vendor_name,Trip_Pickup_DateTime,Trip_Dropoff_DateTime,Passenger_Count,Trip_Distance,Start_Lon,Start_Lat,"
    "Rate_Code,store_and_forward,End_Lon,End_Lat,Payment_Type,Fare_Amt,surcharge,mta_tax,Tip_Amt,Tolls_Amt,Total_Amt",
    "2010": "vendor_id,pickup_datetime,dropoff_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,"
    "rate_code,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,surcharge,mta_tax,"
    "tip_amount,tolls_amount,total_amount",
    "2015": "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,"
    "pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,extra,"
    "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount",
    "2017": "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
    "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "improvement_surcharge,total_amount",
}


@pytest.mark.parametrize(
    ("header", "label"),
    [
        (HEADERS["2009"], "2009 header (Trip_Pickup_DateTime, Start_Lon/Start_Lat)"),
        (HEADERS["2010"], "2010-2014 header (pickup_datetime, pickup_longitude/pickup_latitude)"),
        (HEADERS["2010"].replace(",", ", "),
         "2010-2014 header (pickup_datetime, pickup_longitude/pickup_latitude), spaces after commas (as in 2014)"),
        (HEADERS["2015"], "2015 to 2016-06 header (tpep_*, pickup_longitude/pickup_latitude), RateCodeID"),
        (HEADERS["2015"].replace("RateCodeID", "RatecodeID"),
         "2015 to 2016-06 header (tpep_*, pickup_longitude/pickup_latitude), RatecodeID"),
        (HEADERS["2017"], "2016-07 to 2018 header (tpep_*, PULocationID/DOLocationID), RatecodeID"),
        (HEADERS["2017"] + ",congestion_surcharge",
         "2019+ header (tpep_*, PULocationID/DOLocationID, congestion_surcharge), RatecodeID"),
        (HEADERS["2017"] + ",congestion_surcharge,Airport_fee",
         "2019+ header (tpep_*, PULocationID/DOLocationID, congestion_surcharge), RatecodeID, Airport_fee"),
        (HEADERS["2017"].replace("tpep_", "") + ",congestion_surcharge",
         "extract of a 2016-07+ file with renamed times (pickup_datetime, PULocationID/DOLocationID), "
         "RatecodeID, congestion_surcharge"),
        ("vendor_id,pickup_datetime,dropoff_datetime,trip_distance,pickup_location_id,congestion_surcharge",
         "snake_case extract (pickup_datetime, pickup_location_id), congestion_surcharge"),
        ("pickup,dropoff,passengers,distance,color", "friendly names (pickup, dropoff, distance), color column"),
    ],
    ids=["2009", "2010", "2014", "2015H1", "2015H2", "2016H2", "2019", "airport_fee", "renamed", "snake", "friendly"],
)
def test_header_version_labels(tmp_path, header, label):
    path = write(tmp_path, "t.csv", header + "\n")

    (file,) = expand_inputs(str(path))

    assert inspect_file(file).header_version == label


@pytest.mark.realdata
def test_every_real_header_version_read(real_data):
    """The first KiB of each TLC month 2009-01..2020-06: the label follows the header, rows are read."""
    expected = {
        "2009": "2009 header",
        "2010": "2010-2014 header", "2011": "2010-2014 header", "2012": "2010-2014 header",
        "2013": "2010-2014 header", "2014": "2010-2014 header",
        "2015": "2015 to 2016-06 header",
        "2017": "2016-07 to 2018 header", "2018": "2016-07 to 2018 header",
        "2019": "2019+ header", "2020": "2019+ header",
    }
    for path in sorted((real_data / "nju_wcj_tlc_file_heads").glob("*.csv")):
        year, month = path.name.split("_")[2].split("-")[:2]
        parts, layout = read_all(path)
        wanted = expected.get(year) or ("2015 to 2016-06 header" if month <= "06" else "2016-07 to 2018 header")

        assert layout.header_version.startswith(wanted), path.name
        assert ("spaces after commas" in layout.header_version) == (year == "2014"), path.name
        assert parts[0].table.num_rows >= 3, path.name
        assert parts[0].table.column("pickup").null_count == 0, path.name


@pytest.mark.realdata
def test_third_party_header_labels(real_data):
    cases = {
        "great_expectations_taxi_samples/yellow_tripdata_7500_lines_sample_2019-01.csv":
            "extract of a 2016-07+ file with renamed times",
        "great_expectations_taxi_samples/yellow_tripdata_sample_2019-01.csv": "snake_case extract",
        "seaborn_data/taxis.csv": "friendly names",
        "rockthejvm_spark_essentials/yellow_taxi_jan_25_2018_part-00000_empty.snappy.parquet":
            "2016-07 to 2018 header",
    }
    for name, label in cases.items():
        (file,) = expand_inputs(str(real_data / name))
        assert inspect_file(file).header_version.startswith(label), name


# --- CSV dialects ------------------------------------------------------------------

BASE = [
    ("2017-03-05 10:00:00", "2017-03-05 10:30:00", "5"),
    ("2017-03-05 11:00:00", "2017-03-05 12:00:00", ".20"),
]


def table_rows(data: PartitionData) -> list[tuple]:
    return list(zip(*(data.table.column(n).to_pylist() for n in ("pickup", "dropoff", "distance"))))


EXPECTED_BASE = [(T(2017, 3, 5, 10), T(2017, 3, 5, 10, 30), 5.0), (T(2017, 3, 5, 11), T(2017, 3, 5, 12), 0.2)]


@pytest.mark.parametrize(
    "content",
    [
        "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n{rows}",
        "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\r\n{crlf_rows}",
        "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n\r\n{crlf_rows}",  # LF header, blank CR line
        "tpep_pickup_datetime, tpep_dropoff_datetime, trip_distance\n\n{rows}",  # spaces, blank line
        ",tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n{indexed_rows}",  # unnamed index column
        '"tpep_pickup_datetime","tpep_dropoff_datetime","trip_distance"\n{quoted_rows}',
        "\ufefftpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n{rows}",  # byte order mark
        "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n{ragged_rows}",  # 2016: two extra fields
    ],
    ids=["lf", "crlf", "mixed-blank-cr", "spaces-blank", "unnamed-index", "quoted", "bom", "extra-fields"],
)
def test_csv_dialects_read_alike(tmp_path, content):
    text = content.format(
        rows="".join(",".join(r) + "\n" for r in BASE),
        crlf_rows="".join(",".join(r) + "\r\n" for r in BASE),
        indexed_rows="".join(f"{i}," + ",".join(r) + "\n" for i, r in enumerate(BASE)),
        quoted_rows="".join(",".join(f'"{v}"' for v in r) + "\n" for r in BASE),
        ragged_rows="".join(",".join(r) + ",,\n" for r in BASE),
    )
    path = write(tmp_path, "t.csv", text)

    data = read_one(path)

    assert table_rows(data) == EXPECTED_BASE
    assert data.short_rows == []


def test_rows_of_several_widths(tmp_path):
    """Rows with more fields than the header use the first ones, whatever the usual width."""
    text = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n" + "".join(
        ",".join(r) + ",," + "\n" for r in BASE
    ) + "2017-03-05 12:00:00,2017-03-05 13:00:00,7\n2017-03-05 13:00:00,2017-03-05 14:00:00,8,x,y,z\n"
    path = write(tmp_path, "t.csv", text)

    data = read_one(path)

    assert sorted(table_rows(data)) == sorted(
        EXPECTED_BASE + [(T(2017, 3, 5, 12), T(2017, 3, 5, 13), 7.0), (T(2017, 3, 5, 13), T(2017, 3, 5, 14), 8.0)]
    )


def test_last_row_cut_short_is_unparseable(tmp_path):
    text = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance,total\n" \
           "2017-03-05 10:00:00,2017-03-05 10:30:00,5,9\n2017-03-05 11:00:00,2017-03-05 1"
    path = write(tmp_path, "t.csv", text)

    report = run_taxi_speed(str(path))

    assert report.counts["read"] == 2
    assert report.counts["rejected"]["unparseable"] == 1
    assert report.counts["valid"] == 1


def test_mixed_timestamp_layouts_in_one_file(tmp_path):
    rows = [
        ("2017-03-25 08:55:43", "2017-03-25 09:55:43"),
        ("2017-03-06 12:10", "2017-03-06 13:10"),
        ("2017-03-06 8:10", "2017-03-06 9:10"),
        ("03/25/2017 8:55:43 AM", "03/25/2017 9:55:43 AM"),
        ("03/25/2017 12:05:00 PM", "03/25/2017 1:05:00 PM"),
        ("2019 Jan 29 02:13:01 PM", "2019 Jan 29 03:13:01 PM"),
        ("1/1/2019 0:46", "1/1/2019 1:46"),
        ("12/31/2018 23:46", "1/1/2019 0:46"),
    ]
    text = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n" + "".join(f"{a},{b},10\n" for a, b in rows)
    path = write(tmp_path, "t.csv", text)

    data = read_one(path)

    pickups = data.table.column("pickup").to_pylist()
    assert pickups == [
        T(2017, 3, 25, 8, 55, 43), T(2017, 3, 6, 12, 10), T(2017, 3, 6, 8, 10), T(2017, 3, 25, 8, 55, 43),
        T(2017, 3, 25, 12, 5), T(2019, 1, 29, 14, 13, 1), T(2019, 1, 1, 0, 46), T(2018, 12, 31, 23, 46),
    ]
    durations = [b - a for a, b in zip(pickups, data.table.column("dropoff").to_pylist())]
    assert durations == [dt.timedelta(hours=1)] * len(rows)
    assert data.timestamp_formats["pickup"] == {
        "YYYY-MM-DD hh:mm:ss": 1,
        "YYYY-MM-DD hh:mm": 2,
        "MM/DD/YYYY hh:mm:ss AM/PM": 2,
        "YYYY Mon DD hh:mm:ss AM/PM": 1,
        "M/D/YYYY H:MM (24-hour, month first)": 2,
    }


@pytest.mark.realdata
def test_manifest_records_header_and_formats(real_data, tmp_path):
    import json

    path = real_data / "google_ada_automatidata" / "Yellow_Taxi_Trip_Data_excel_resaved.csv"

    report = run_taxi_speed(str(path), output=str(tmp_path / "out"))

    (entry,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"]
    assert entry["header_version"] == "2016-07 to 2018 header (tpep_*, PULocationID/DOLocationID), RatecodeID"
    # The source documents 13,669 pickups kept as 12-hour text and 9,030 rewritten as 24-hour.
    assert entry["timestamp_formats"]["pickup"] == {
        "MM/DD/YYYY hh:mm:ss AM/PM": 13669,
        "M/D/YYYY H:MM (24-hour, month first)": 9030,
    }
    assert report.inputs[0]["timestamp_formats"] == entry["timestamp_formats"]


# --- values --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    ["2/30/2019 0:46", "2017-02-29 10:00:00", "13/01/2019 0:46", "1/1/2019 24:00", "03/25/2017 0:55:43 AM",
     "2019 Foo 29 02:13:01 PM", "2017-03-25 10:61", "yesterday", "", "   "],
)
def test_impossible_timestamps_become_null(text):
    parsed, counts = parse_timestamps(pa.array([text, "2017-03-25 10:00"]))

    assert parsed.to_pylist() == [None, T(2017, 3, 25, 10)]


@pytest.mark.parametrize(
    ("text", "value"),
    [(".20", 0.2), ("20.", 20.0), ("-1.5", -1.5), ("+2", 2.0), ("1e3", 1000.0), (" 3 ", 3.0),
     ("1,5", None), ("abc", None), ("", None), ("0x10", None), ("inf", None), ("nan", None)],
)
def test_distance_text_parsed(text, value):
    assert parse_numbers(pa.array([text])).to_pylist() == [value]


def test_unreadable_values_counted_not_nan(tmp_path):
    """A value the reader cannot read anywhere in a file is counted unparseable; the rest stays typed."""
    rows = [f"2017-03-05 10:{m:02d}:00,2017-03-05 11:{m:02d}:00,5" for m in range(50)]
    rows[37] = "2017-03-05 10:00:00,2017-03-05 11:00:00,five"
    rows[12] = "2017-03-05 10:00:00,2017-13-05 11:00:00,5"
    path = write(tmp_path, "t.csv", "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\n" + "\n".join(rows))

    report = run_taxi_speed(str(path))

    assert report.counts["rejected"]["unparseable"] == 2
    assert report.counts["valid"] == 48
    assert report.result["mean_speed_mph"].tolist() == [5.0]


# --- parquet -------------------------------------------------------------------------

def parquet_table(pickups, dropoffs, kind) -> pa.Table:
    return pa.table(
        {
            "VendorID": pa.array([1, 2], pa.int32()),
            "tpep_pickup_datetime": pa.array(pickups, kind),
            "tpep_dropoff_datetime": pa.array(dropoffs, kind),
            "trip_distance": pa.array([5.0, 10.0]),
        }
    )


PICKUPS = [T(2018, 1, 25, 10, 0, 0), T(2018, 1, 25, 11, 0, 0)]
DROPOFFS = [T(2018, 1, 25, 10, 30, 0), T(2018, 1, 25, 11, 30, 0)]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_parquet_timestamp_units(tmp_path, unit):
    path = tmp_path / "t.parquet"
    pq.write_table(parquet_table(PICKUPS, DROPOFFS, pa.timestamp(unit)), path)

    data = read_one(path)
    report = run_taxi_speed(str(path))

    assert table_rows(data) == [(a, b, d) for a, b, d in zip(PICKUPS, DROPOFFS, [5.0, 10.0])]
    assert report.result["mean_speed_mph"].tolist() == [15.0]
    # Parquet has no seconds unit; pyarrow stores seconds as milliseconds.
    stored = {"s": "ms"}.get(unit, unit)
    assert data.timestamp_formats["pickup"] == {f"parquet timestamp[{stored}]": 2}


def test_parquet_int96_timestamps(tmp_path):
    path = tmp_path / "spark.parquet"
    pq.write_table(parquet_table(PICKUPS, DROPOFFS, pa.timestamp("ns")), path, use_deprecated_int96_timestamps=True)

    data = read_one(path)

    assert data.table.column("pickup").to_pylist() == PICKUPS
    assert data.timestamp_formats["pickup"] == {"parquet INT96": 2}


def test_parquet_timestamps_with_zone_keep_wall_clock(tmp_path):
    path = tmp_path / "tz.parquet"
    table = parquet_table(PICKUPS, DROPOFFS, pa.timestamp("us"))
    zoned = pa.timestamp("us", tz="America/New_York")
    table = table.set_column(1, "tpep_pickup_datetime", pa.array(PICKUPS, pa.timestamp("us")).cast(zoned))
    pq.write_table(table, path)

    data = read_one(path)

    # The naive values were taken as UTC instants; their New York wall clock is five hours earlier.
    assert data.table.column("pickup").to_pylist() == [p - dt.timedelta(hours=5) for p in PICKUPS]


def test_parquet_timestamps_as_strings(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(
        pa.table(
            {
                "tpep_pickup_datetime": ["2018-01-25 10:00:00", "01/25/2018 11:00:00 AM", "bad"],
                "tpep_dropoff_datetime": ["2018-01-25 10:30:00", "01/25/2018 11:30:00 AM", "2018-01-25 12:00:00"],
                "trip_distance": ["5", ".5", "1"],
            }
        ),
        path,
    )

    report = run_taxi_speed(str(path))

    assert report.counts["rejected"]["unparseable"] == 1
    assert report.result["trips"].tolist() == [2]
    assert report.result["mean_speed_mph"].tolist() == [pytest.approx(5.5)]


# --- byte ranges ---------------------------------------------------------------------

def test_small_blocksize_same_as_one_block(tmp_path):
    """CRLF rows split into ~40 byte ranges give the same trips as one block."""
    lines = [",VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance,total"]
    for i in range(400):
        minute = i % 60
        pickup = f"03/{1 + i % 28:02d}/2017 {1 + i % 12}:{minute:02d}:00 {'AM' if i % 2 else 'PM'}"
        dropoff = f"03/{1 + i % 28:02d}/2017 {1 + i % 12}:{minute:02d}:59 {'AM' if i % 2 else 'PM'}"
        lines.append(f"{i},1,{pickup},{dropoff},{(i % 7) / 10:.2f},{i}")
    lines.append("401,1,03/05/2017 1:0")  # cut short
    path = write(tmp_path, "t.csv", "\r\n".join(lines))
    size = path.stat().st_size

    parts, layout = read_all(path, blocksize=1024)
    whole = read_one(path)
    report_small = run_taxi_speed(str(path), blocksize=1024)
    report_whole = run_taxi_speed(str(path))

    assert len(parts) == -(-size // 1024) > 20
    assert sorted(r for p in parts for r in table_rows(p)) == sorted(table_rows(whole))
    assert sum(len(p.short_rows) for p in parts) == len(whole.short_rows) == 1
    assert report_small.counts == report_whole.counts
    pd.testing.assert_frame_equal(report_small.result, report_whole.result, rtol=1e-12)


def test_block_boundary_at_every_byte(tmp_path):
    """Every split point, including between CR and LF, keeps each row exactly once."""
    rows = [f"2017-03-05 10:{m:02d}:00,2017-03-05 11:{m:02d}:00,{m}" for m in range(1, 40)]
    text = "tpep_pickup_datetime,tpep_dropoff_datetime,trip_distance\r\n" + "\r\n".join(rows) + "\r\n"
    path = write(tmp_path, "t.csv", text)
    expected = sorted(table_rows(read_one(path)))

    for blocksize in range(20, len(text) + 1, 7):
        parts, _ = read_all(path, blocksize=blocksize)
        assert sorted(r for p in parts for r in table_rows(p)) == expected, blocksize
