"""Options shared by several commands, and the values built from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from triage_ml.ingest.mapping import ColumnMapping

MAPPING_PANEL = "Column mapping"

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (like TRIAGE_CONFIG; the environment overrides it).",
        show_default=False,
    ),
]
ModelChoice = Annotated[
    str, typer.Option("--model", help="'champion' or a registered version number.")
]


def _mapping_option(help_text: str) -> Any:
    """A column-mapping flag: optional, shown in the mapping panel of the help."""
    return typer.Option(help=help_text, rich_help_panel=MAPPING_PANEL, show_default=False)


TextColumns = Annotated[
    str | None,
    _mapping_option("Comma-separated text columns (the first is the subject when several)."),
]
CategoryColumn = Annotated[str | None, _mapping_option("Column holding the category label.")]
PriorityColumn = Annotated[str | None, _mapping_option("Column holding the priority label.")]
IdColumn = Annotated[str | None, _mapping_option("Column holding a unique ticket id.")]
CreatedAtColumn = Annotated[str | None, _mapping_option("Column holding the creation timestamp.")]


def count(minimum: int) -> Callable[[str], int]:
    """A parser of whole numbers of at least ``minimum``, with a message that says which rule broke.

    Args:
        minimum: the smallest value accepted.

    Returns:
        A function Typer calls with the flag's text.
    """

    def parse(text: str | int) -> int:
        try:
            value = int(text)
        except ValueError:
            raise typer.BadParameter(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise typer.BadParameter(f"{value} is below the minimum of {minimum}")
        return value

    return parse


def counted(minimum: int, help_text: str = "") -> typer.models.OptionInfo:
    """A ``typer.Option`` holding a whole number of at least ``minimum``."""
    return typer.Option(parser=count(minimum), metavar="N", help=help_text)


def column_mapping(
    text_columns: str | None = None,
    category_column: str | None = None,
    priority_column: str | None = None,
    id_column: str | None = None,
    created_at_column: str | None = None,
    labeled: bool = True,
) -> ColumnMapping:
    """A column mapping from the mapping flags; the names given explicitly must exist in the file.

    Args:
        text_columns: comma-separated text column names, or None for the defaults.
        category_column: the category label's column, or None for the default.
        priority_column: the priority label's column, or None for the default.
        id_column: the ticket id's column, or None for the default.
        created_at_column: the creation time's column, or None for the default.
        labeled: whether the rows carry labels (False for tickets to score).

    Returns:
        The mapping that ingest, evaluate and file scoring read a file with.
    """
    from triage_ml.ingest.mapping import ColumnMapping

    given = {
        "text_columns": tuple(c.strip() for c in text_columns.split(",") if c.strip())
        if text_columns
        else None,
        "category_column": category_column,
        "priority_column": priority_column,
        "id_column": id_column,
        "created_at_column": created_at_column,
    }
    values = {k: v for k, v in given.items() if v}
    return ColumnMapping(**values, explicit=frozenset(values), labeled=labeled)


# A registered version's number, as `promote` and `shadow start` take it.
VersionArgument = Annotated[
    int,
    typer.Argument(
        parser=count(1), metavar="VERSION", help="Registered version number.", show_default=False
    ),
]
