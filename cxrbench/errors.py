"""User-facing errors. ``cxrbench`` prints them as one line and exits non-zero, without traceback.

Both error types pickle (``__reduce__``), so a worker process's error reaches the parent intact
(``multiprocessing`` re-raises what it unpickles; an error that does not pickle leaves the
pool waiting for ever). :func:`reading` is the one place that turns a reader's exception
(pandas, pyarrow, zipfile, zlib, JSON, OS errors) into a :class:`DataError` naming the file.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


class CxrbenchError(Exception):
    """Bad input, a missing file, inconsistent runs: something the user can fix."""

    exit_code = 1

    def __reduce__(self):
        return (type(self), self.args)


class DataError(CxrbenchError):
    """Malformed input data. The message always names the file, the record and the problem."""

    def __init__(self, file: str, record: str | None, problem: str):
        self.file, self.record, self.problem = str(file), record, problem
        where = f"{self.file}" + (f", record {record}" if record is not None else "")
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        return (type(self), (self.file, self.record, self.problem))


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {text}" if not text.startswith(type(err).__name__) else text


@contextlib.contextmanager
def reading(file: object, record: str | None = None, what: str = "file") -> Iterator[None]:
    """Turn any failure to read ``file`` into a one-line :class:`DataError` naming it.

    ``what`` names the format in the message ("Parquet file", "CSV file", "zip member").
    CxrbenchErrors raised inside (already user-facing) pass through unchanged.
    """
    import zipfile
    import zlib

    try:
        yield
    except CxrbenchError:
        raise
    except FileNotFoundError:
        raise DataError(str(file), record, "file not found") from None
    except IsADirectoryError:
        raise DataError(str(file), record, f"is a directory, not a {what}") from None
    except PermissionError as err:
        raise DataError(str(file), record, f"cannot read ({err.strerror})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DataError(str(file), record, f"damaged or truncated {what} ({_describe(err)})") from None
    except UnicodeDecodeError as err:
        raise DataError(str(file), record, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        # pyarrow's ArrowInvalid/ArrowIOError and pandas' ParserError/EmptyDataError derive from these
        raise DataError(str(file), record, f"unreadable {what} ({_describe(err)})") from None
