"""Where batches come from: CSV and Parquet files, or a table or query in any SQLAlchemy database.

A source is anything with the :class:`Source` methods; a new kind of source is
one class here. Every source yields chunks of raw strings (``None`` for missing
values), so the contracts see exactly what the source held and memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from triage_ml.errors import InputError, StoreError
from triage_ml.redact import mask_url
from triage_ml.store import database_url

_SNIFF_BYTES = 8192
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
        if self.path.stat().st_size == 0:
            raise InputError(f"input file is empty: {self.path}")


@dataclass(frozen=True)
class CsvFile(_File):
    """A UTF-8 CSV file; undecodable bytes are kept as U+FFFD so only their rows are quarantined."""

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """Yield the file in chunks of raw strings.

        Raises:
            InputError: missing, empty, binary or not a readable CSV file.
        """
        self._require_content()
        self._require_utf8_text()
        try:
            # Bytes that are not UTF-8 become U+FFFD, so validation quarantines
            # only the rows that hold them instead of failing the whole file.
            reader = pd.read_csv(
                self.path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                chunksize=chunk_rows,
                encoding="utf-8",
                encoding_errors="replace",
            )
            yield from reader
        except pd.errors.EmptyDataError as exc:
            raise InputError(f"input file has no header or rows: {self.path}") from exc
        except pd.errors.ParserError as exc:
            raise InputError(f"{self.path} is not a readable CSV file: {_first_line(exc)}") from exc

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
            raise InputError(
                f"{self.path} is not a readable Parquet file: {_first_line(exc)}"
            ) from exc
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield _as_strings(batch.to_pandas())


@dataclass(frozen=True)
class SqlSource:
    """A table, or a read-only query, in a database SQLAlchemy can reach.

    Put credentials in the environment (e.g. PGPASSWORD), not in the URL:
    the URL is shown, with any password masked, in summaries and logs.
    """

    url: str
    query: str | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        if (self.query is None) == (self.table is None):
            raise InputError("a SQL source needs exactly one of --sql-query or --table")

    def __str__(self) -> str:
        return f"{mask_url(self.url)} [{'table ' + self.table if self.table else 'query'}]"

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
