"""Where batches come from: CSV and Parquet files, or a table or query in any SQLAlchemy database.

Every reader yields chunks of raw strings (``None`` for missing values), so
the contracts see exactly what the source held and memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from triage_ml.errors import InputError, StoreError
from triage_ml.redact import mask_url
from triage_ml.store import database_url

_SNIFF_BYTES = 8192


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


Source = Path | SqlSource


def describe(source: Source) -> str:
    """How a source is named in batch records (absolute path, or masked URL)."""
    if isinstance(source, SqlSource):
        return str(source)
    return str(source.resolve()) if source.exists() else str(source)


def read_source(source: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield a source in chunks of raw strings.

    Raises:
        InputError: the file is missing, empty or not a readable table, or
            the database cannot be reached or queried.
    """
    if isinstance(source, SqlSource):
        yield from _read_sql(source, chunk_rows)
        return
    if not source.exists():
        raise InputError(f"input file not found: {source}")
    if source.stat().st_size == 0:
        raise InputError(f"input file is empty: {source}")
    if source.suffix.lower() in (".parquet", ".pq"):
        yield from _read_parquet(source, chunk_rows)
    else:
        yield from _read_csv(source, chunk_rows)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame.astype("string")
    return text.astype(object).where(text.notna(), None)


def _require_utf8_text(path: Path) -> None:
    # A spreadsheet, an image or UTF-16 text holds NUL bytes; text in another
    # 8-bit encoding is mostly undecodable. Either would otherwise surface as
    # garbage column names or every row quarantined.
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    if b"\x00" in head or undecodable > len(head) // 20:
        raise InputError(
            f"{path} is not a UTF-8 CSV file (binary data or another encoding); export it as CSV UTF-8"
        )


def _read_csv(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    _require_utf8_text(path)
    try:
        # Bytes that are not UTF-8 become U+FFFD, so validation quarantines
        # only the rows that hold them instead of failing the whole file.
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=chunk_rows,
            encoding="utf-8",
            encoding_errors="replace",
        )
        yield from reader
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"input file has no header or rows: {path}") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path} is not a readable CSV file: {_first_line(exc)}") from exc


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types here
        raise InputError(f"{path} is not a readable Parquet file: {_first_line(exc)}") from exc
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        yield _as_strings(batch.to_pandas())


def _sql_statement(source: SqlSource, engine: sa.Engine) -> sa.Executable:
    if source.query is not None:
        return sa.text(source.query)
    try:
        return sa.select(sa.Table(source.table, sa.MetaData(), autoload_with=engine))
    except NoSuchTableError as exc:
        raise InputError(f"table '{source.table}' not found in {source}") from exc


def _read_sql(source: SqlSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        engine = sa.create_engine(
            database_url(source.url)
        )  # postgresql:// -> psycopg 3, as for the store
    except (SQLAlchemyError, ImportError, ValueError, StoreError) as exc:
        raise InputError(f"invalid SQL source URL {source}: {_first_line(exc)}") from exc
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                _sql_statement(source, engine)
            )
            columns = list(result.keys())
            while rows := result.fetchmany(chunk_rows):
                yield _as_strings(pd.DataFrame(rows, columns=columns))
    except InputError:
        raise
    except SQLAlchemyError as exc:
        raise InputError(
            f"cannot read SQL source {source}: {_first_line(getattr(exc, 'orig', None) or exc)}"
        ) from exc
    finally:
        engine.dispose()
