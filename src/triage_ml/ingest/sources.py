"""Where batches come from: CSV and Parquet files, or a table or query in any SQLAlchemy database.

A source is anything with the :class:`Source` methods; a new kind of source is
one class here. Every source yields chunks of raw strings (``None`` for missing
values), so the contracts see exactly what the source held and memory stays flat.
"""

from __future__ import annotations

import collections
import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, field_serializer, model_validator
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from triage_ml.errors import InputError, StoreError
from triage_ml.redact import mask_url
from triage_ml.store import database_url

_SNIFF_BYTES = 8192
# The csv module refuses fields over 128 KiB by default; a ticket body may be
# longer (the contract quarantines it with a reason rather than failing the file).
_MAX_FIELD_CHARS = 2**31 - 1
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")


class Source(Protocol):
    """A place a batch is read from.

    ``str(source)`` names it in error messages as the user gave it;
    :meth:`describe` names it in batch records.
    """

    def describe(self) -> str:
        """How the source is named in batch records (never with a password)."""
        ...

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Yield the source in chunks of at most ``chunk_rows`` rows of raw strings.

        Raises:
            InputError: the source is missing, empty or unreadable.
        """
        ...


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame.astype("string")
    return text.astype(object).where(text.notna(), None)


@dataclass(frozen=True)
class _File:
    """What every file source shares: its path, how it is named, and the existence checks."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)

    def describe(self) -> str:
        """The absolute path when the file exists, else the path as given."""
        return str(self.path.resolve()) if self.path.exists() else str(self.path)

    def _require_content(self) -> None:
        if not self.path.exists():
            raise InputError(f"input file not found: {self.path}")
        if not self.path.is_file():
            raise InputError(f"{self.path} is a directory or a device, not a file")
        if self.path.stat().st_size == 0:
            raise InputError(f"input file is empty: {self.path}")


@dataclass(frozen=True)
class CsvFile(_File):
    """A UTF-8 CSV file; undecodable bytes are kept as U+FFFD so only their rows are quarantined.

    Every line must have as many fields as the header names columns. Empty
    fields past the last named column (a trailing separator, on some lines or
    on all of them, or in the header) are dropped; any other difference in
    the field count fails the file with the line it is on, so a value is
    never stored under another column's name.
    """

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Yield the file in chunks of raw strings.

        Raises:
            InputError: missing, empty, binary or not a readable CSV file, or a
                line whose field count does not match the header.
        """
        self._require_content()
        self._require_utf8_text()
        width = self._header_width()
        # Each chunk's lines are checked before the chunk is yielded, and any
        # lines left after the last chunk before the file counts as read.
        lines = _checked_lines(self.path, width)
        for chunk in self._read(chunk_rows, width):
            collections.deque(itertools.islice(lines, len(chunk)), maxlen=0)
            yield chunk
        collections.deque(lines, maxlen=0)

    def _read(self, chunk_rows: int, width: int) -> Iterator[pd.DataFrame]:
        try:
            # Bytes that are not UTF-8 become U+FFFD, so validation quarantines
            # only the rows that hold them instead of failing the whole file.
            # index_col=False and usecols: pandas never takes a first column
            # as the index, nor keeps the unnamed column a trailing separator makes.
            reader = pd.read_csv(
                self.path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=chunk_rows,
                encoding="utf-8",
                encoding_errors="replace",
                index_col=False,
                usecols=range(width),
            )
            yield from reader
        except pd.errors.EmptyDataError as exc:
            raise InputError(f"input file has no header or rows: {self.path}") from exc
        except pd.errors.ParserError as exc:
            raise InputError(f"{self.path} is not a readable CSV file: {_first_line(exc)}") from exc

    def _header_width(self) -> int:
        """How many columns the header names, not counting empty names at its end."""
        with _open_text(self.path) as handle:
            try:
                header = next((r for r in _csv_reader(handle) if not _blank(r)), [])
            except csv.Error as exc:
                raise InputError(f"{self.path} is not a readable CSV file: {exc}") from exc
        while header and not header[-1].strip():
            header.pop()
        if not header:
            raise InputError(f"input file has no header or rows: {self.path}")
        return len(header)

    def _require_utf8_text(self) -> None:
        # A spreadsheet, an image or UTF-16 text holds NUL bytes; text in another
        # 8-bit encoding is mostly undecodable. Either would otherwise surface as
        # garbage column names or every row quarantined.
        with self.path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
        if b"\x00" in head or undecodable > len(head) // 20:
            raise InputError(
                f"{self.path} is not a UTF-8 CSV file (binary data or another encoding); "
                "export it as CSV UTF-8"
            )


def _open_text(path: Path) -> Any:
    # As pandas reads it: UTF-8 with a byte order mark dropped, bad bytes replaced.
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def _csv_reader(handle: Any) -> Iterator[list[str]]:
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD_CHARS))
    return csv.reader(handle)


def _blank(record: list[str]) -> bool:
    """A line pandas skips: empty, or one field of whitespace."""
    return len(record) == 0 or (len(record) == 1 and not record[0].strip())


def _checked_lines(path: Path, width: int) -> Iterator[None]:
    """Yield once per data line of ``path`` after checking its field count against ``width``.

    Raises:
        InputError: a line has fewer fields than the header names, or a value
            past the last named column; the message names the line.
    """
    with _open_text(path) as handle:
        reader = _csv_reader(handle)
        try:
            next(r for r in reader if not _blank(r))
            end = reader.line_num
            for record in reader:
                # A quoted value may span lines: name the line the record starts on.
                start, end = end + 1, reader.line_num
                if not _blank(record):
                    _check_width(path, start, record, width)
                    yield
        except csv.Error as exc:
            raise InputError(
                f"{path} is not a readable CSV file: line {reader.line_num}: {exc}"
            ) from exc


def _check_width(path: Path, line: int, record: list[str], width: int) -> None:
    if len(record) < width:
        raise InputError(
            f"{path} line {line} has {len(record)} fields, but the header names {width} "
            "columns (a missing separator, or a line break outside quotes?)"
        )
    if any(value.strip() for value in record[width:]):
        raise InputError(
            f"{path} line {line} has {len(record)} fields, but the header names {width} "
            "columns (an unquoted separator inside a value?)"
        )


@dataclass(frozen=True)
class ParquetFile(_File):
    """A Parquet file, read batch by batch and turned into raw strings like a CSV's."""

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Yield the file in chunks of raw strings.

        Raises:
            InputError: missing, empty or not a readable Parquet file.
        """
        import pyarrow.parquet as pq

        self._require_content()
        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several unrelated types here
            raise self._unreadable(exc) from exc
        self._require_text_columns(parquet.schema_arrow)
        batches = parquet.iter_batches(batch_size=chunk_rows)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # a corrupt page: OSError, ArrowInvalid and others
                raise self._unreadable(exc) from exc
            if batch is None:
                return
            yield _as_strings(batch.to_pandas())

    def _unreadable(self, exc: BaseException) -> InputError:
        return InputError(f"{self.path} is not a readable Parquet file: {_first_line(exc)}")

    def _require_text_columns(self, schema: Any) -> None:
        """Refuse binary columns: their bytes are no text to validate or store."""
        import pyarrow as pa

        binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)
        for arrow_field in schema:
            if any(test(arrow_field.type) for test in binary):
                raise InputError(
                    f"{self.path}: column '{arrow_field.name}' holds binary data, not text; "
                    "write it as a string column"
                )


class SqlSource(BaseModel):
    """A table, or a read-only query, in a database SQLAlchemy can reach.

    Put credentials in the environment (e.g. PGPASSWORD), not in the URL:
    the URL is shown, with any password masked, in summaries and logs, and
    its JSON form (how a flow's parameters reach the Prefect API and its UI)
    masks it too. A pydantic model rather than a dataclass because Prefect
    serialises dataclass parameters field by field, with no hook to mask one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    query: str | None = None
    table: str | None = None

    def __init__(
        self, url: str, query: str | None = None, table: str | None = None, **data: Any
    ) -> None:
        """Keep the positional form ``SqlSource(url, query, table)``."""
        super().__init__(url=url, query=query, table=table, **data)

    @model_validator(mode="after")
    def _one_of_query_or_table(self) -> SqlSource:
        if (self.query is None) == (self.table is None):
            raise InputError("a SQL source needs exactly one of --sql-query or --table")
        return self

    @field_serializer("url", when_used="json")
    def _masked_url(self, value: str) -> str:
        return mask_url(value)

    def __str__(self) -> str:
        return f"{mask_url(self.url)} [{'table ' + self.table if self.table else 'query'}]"

    def __repr__(self) -> str:
        return f"SqlSource({self})"

    def describe(self) -> str:
        """The URL with its password masked, and the table (or ``query``)."""
        return str(self)

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Stream the table or query result in chunks of raw strings.

        Raises:
            InputError: an invalid URL, an unreachable database, a missing table or a failing query.
        """
        try:
            # postgresql:// becomes psycopg 3, as for the store.
            engine = sa.create_engine(database_url(self.url))
        except (SQLAlchemyError, ImportError, ValueError, StoreError) as exc:
            raise InputError(f"invalid SQL source URL {self}: {_first_line(exc)}") from exc
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(
                    self._statement(engine)
                )
                columns = list(result.keys())
                while rows := result.fetchmany(chunk_rows):
                    yield _as_strings(pd.DataFrame(rows, columns=columns))
        except InputError:
            raise
        except SQLAlchemyError as exc:
            reason = _first_line(getattr(exc, "orig", None) or exc)
            raise InputError(f"cannot read SQL source {self}: {reason}") from exc
        finally:
            engine.dispose()

    def _statement(self, engine: sa.Engine) -> sa.Executable:
        if self.query is not None:
            return sa.text(self.query)
        try:
            return sa.select(sa.Table(self.table, sa.MetaData(), autoload_with=engine))
        except NoSuchTableError as exc:
            raise InputError(f"table '{self.table}' not found in {self}") from exc


def file_source(path: Path) -> Source:
    """The source for a file: Parquet by its suffix, CSV otherwise."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return ParquetFile(path)
    return CsvFile(path)


def as_source(source: Source | Path | str) -> Source:
    """A source as given, or the file source of a path."""
    if isinstance(source, (str, Path)):
        return file_source(Path(source))
    return source


def describe(source: Source | Path) -> str:
    """How a source is named in batch records (absolute path, or masked URL)."""
    return as_source(source).describe()


def read_source(source: Source | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield a source, or the file at a path, in chunks of raw strings (:meth:`Source.chunks`)."""
    return as_source(source).chunks(chunk_rows)
