"""User-facing errors cross process boundaries and readers' exceptions become one-line DataErrors."""

from __future__ import annotations

import gzip
import multiprocessing as mp
import pickle
import zipfile

import pandas as pd
import pytest

from cxrbench.errors import CxrbenchError, DataError, reading


def _raise_data_error(_):
    raise DataError("qa.zip:p10/p1/s2.qa.json", "question q1", "missing required field 'answers'")


def test_errors_pickle_with_their_fields():
    err = pickle.loads(pickle.dumps(DataError("f.csv", "row 3", "bad value")))
    assert (err.file, err.record, err.problem, str(err)) == ("f.csv", "row 3", "bad value", "f.csv, record row 3: bad value")
    assert str(pickle.loads(pickle.dumps(CxrbenchError("plain")))) == "plain"


def test_a_worker_error_reaches_the_parent():
    with mp.get_context("fork").Pool(1) as pool:
        with pytest.raises(DataError, match="missing required field 'answers'") as info:
            pool.apply_async(_raise_data_error, (0,)).get(timeout=30)
    assert info.value.record == "question q1"


@pytest.mark.parametrize("content, what, expected", [
    (b"PAR1 not really", "Parquet file", "unreadable Parquet file"),
    (b"", "Parquet file", "unreadable Parquet file"),
])
def test_damaged_parquet_is_named(tmp_path, content, what, expected):
    p = tmp_path / "predictions.parquet"
    p.write_bytes(content)
    with pytest.raises(DataError, match=expected) as info:
        with reading(p, what=what):
            pd.read_parquet(p)
    assert info.value.file == str(p)


def test_truncated_gzip_and_corrupt_zip_member_are_named(tmp_path):
    gz = tmp_path / "t.csv.gz"
    data = gzip.compress(b"a,b\n1,2\n" * 100_000)
    gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged or truncated"):
        with reading(gz, what="CSV file"):
            pd.read_csv(gz)
    z = tmp_path / "qa.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("qa/p10/p1/s2.qa.json", ('{"questions": [%s]}' % ",".join(map(str, range(3000)))).encode())
    raw = bytearray(z.read_bytes())
    raw[200:240] = b"\xff" * 40                        # inside the deflate stream of the member
    z.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged or truncated zip member") as info:
        with reading(f"{z}:qa/p10/p1/s2.qa.json", what="zip member"):
            zipfile.ZipFile(z).read("qa/p10/p1/s2.qa.json")
    assert info.value.file.endswith("qa.zip:qa/p10/p1/s2.qa.json")


def test_missing_file_and_user_errors_pass_through(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        with reading(tmp_path / "nope.csv"):
            open(tmp_path / "nope.csv").read()
    with pytest.raises(CxrbenchError, match="already user-facing"):
        with reading(tmp_path / "x"):
            raise CxrbenchError("already user-facing")
