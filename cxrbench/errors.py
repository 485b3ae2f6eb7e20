"""User-facing errors. ``cxrbench`` prints them as one line and exits non-zero, without traceback."""

from __future__ import annotations


class CxrbenchError(Exception):
    """Bad input, a missing file, inconsistent runs: something the user can fix."""

    exit_code = 1


class DataError(CxrbenchError):
    """Malformed input data. The message always names the file, the record and the problem."""

    def __init__(self, file: str, record: str | None, problem: str):
        self.file, self.record, self.problem = str(file), record, problem
        where = f"{self.file}" + (f", record {record}" if record is not None else "")
        super().__init__(f"{where}: {problem}")
