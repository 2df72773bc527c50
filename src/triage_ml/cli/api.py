"""The ticket events API: ``api serve``, ``api token create|list|revoke``, ``api openapi``.

The server and its logic live in :mod:`triage_ml.api`; this module parses the flags,
checks the bind address and prints results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from triage_ml.cli import render
from triage_ml.cli.options import ConfigFile, JsonFlag
from triage_ml.cli.runner import invoke, options
from triage_ml.errors import TriageError
from triage_ml.settings import config_file

if TYPE_CHECKING:
    from triage_ml.settings import Settings

PANEL = "Ticket events API"
OPENAPI_FILE = Path("docs/api/openapi.json")
api_app = typer.Typer(help="The ticket events API: helpdesks send tickets, get triage back.")
token_app = typer.Typer(help="Bearer tokens of the API (only their SHA-256 is stored).")

Host = Annotated[
    str | None, typer.Option(help="Address to listen on (default: api.host).", show_default=False)
]
Port = Annotated[
    int | None,
    typer.Option(
        min=0, max=65535, help="Port (default: api.port; 0 picks a free one).", show_default=False
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        min=1, max=32, help="Server processes (default: api.workers).", show_default=False
    ),
]
AllowRemote = Annotated[
    bool, typer.Option("--allow-remote", help="Listen on a non-loopback address too.")
]


# ---- logic ----------------------------------------------------------------------


def announce(host: str, port: int, champion: str) -> None:
    """The one line that says the server takes requests."""
    typer.echo(
        f"triage-ml api listening on http://{host}:{port} (champion version {champion})", err=True
    )


def serve(
    settings: Settings,
    where: tuple[str | None, int | None, int | None],
    allow_remote: bool,
    config: Path | None = None,
) -> dict[str, Any]:
    """Serve the API until SIGTERM or Ctrl-C (every request needs a token; the bind is checked).

    ``where`` is the host, port and worker processes given on the command line (None: the
    settings'); ``config`` the config file the settings came from, for the workers.
    """
    from triage_ml.api import server
    from triage_ml.scoring.serving import check_bind

    host, port, workers = where
    host = host if host is not None else settings.api.host
    warning = check_bind(host, allow_remote, has_token=True)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    if workers is not None:
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"workers": workers})}
        )
    port = settings.api.port if port is None else port
    return server.serve(settings, host, port, announce, config)


def create_token(settings: Settings, name: str, scope: str) -> dict[str, Any]:
    """A new token (its full text is in the result, and nowhere else afterwards)."""
    from triage_ml import store
    from triage_ml.api import auth

    with store.opened(settings.store_url) as engine:
        made = auth.create_token(engine, name, scope, store.utcnow())
    return {"name": made.name, "scope": made.scope, "token": made.token}


def list_tokens(settings: Settings) -> dict[str, Any]:
    """Every token: name, scope, dates; never a secret or its digest."""
    from triage_ml import store
    from triage_ml.api import auth

    with store.opened(settings.store_url) as engine:
        rows = auth.list_tokens(engine)
    dates = ("created_at", "last_used_at", "revoked_at")
    return {
        "tokens": [
            {
                k: (v.isoformat() + "Z" if k in dates and v is not None else v)
                for k, v in row.items()
            }
            for row in rows
        ]
    }


def revoke_token(settings: Settings, name: str) -> dict[str, Any]:
    """Revoke the token ``name``: its requests get 401 from now on."""
    from triage_ml import store
    from triage_ml.api import auth

    with store.opened(settings.store_url) as engine:
        auth.revoke_token(engine, name, store.utcnow())
    return {"name": name, "revoked": True}


def openapi_text() -> str:
    """The API's OpenAPI document as checked in: sorted keys, indent 2, a final newline."""
    from triage_ml.api.app import openapi_document

    return json.dumps(openapi_document(), sort_keys=True, indent=2) + "\n"


def openapi(out: Path | None, check: Path | None) -> dict[str, Any]:
    """Write the document to ``out``, compare it with ``check``, or return it."""
    text = openapi_text()
    if check is not None:
        current = check.read_text(encoding="utf-8") if check.exists() else None
        if current != text:
            raise TriageError(
                f"{check} is not the API's OpenAPI document: run "
                f"`triage-ml api openapi --out {check}`"
            )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    if out is None and check is None:
        return json.loads(text)
    return {"out": str(out) if out else None, "checked": str(check) if check else None}


# ---- rendering ------------------------------------------------------------------


def render_served(result: dict[str, Any]) -> Text:
    """How the server ended."""
    return Text(
        f"triage-ml api on http://{result['host']}:{result['port']} stopped "
        f"(champion version {result['champion']})"
    )


def render_token(result: dict[str, Any]) -> Text:
    """The token alone on stdout (so it can be piped to a file); the note on stderr."""
    typer.echo(
        f"token '{result['name']}' (scope {result['scope']}) created; it is shown only this once",
        err=True,
    )
    return Text(result["token"])


def render_tokens(result: dict[str, Any]) -> Any:
    """The tokens as a table."""
    if not result["tokens"]:
        return Text("no API tokens (create one with `triage-ml api token create --name NAME`)")
    return render.table(
        "API tokens",
        ["name", "scope", "created", "last used", "revoked"],
        (
            [
                t["name"],
                t["scope"],
                render.local_time(t["created_at"]),
                render.local_time(t["last_used_at"]) if t["last_used_at"] else "never",
                render.local_time(t["revoked_at"]) if t["revoked_at"] else "",
            ]
            for t in result["tokens"]
        ),
    )


def render_openapi(result: dict[str, Any]) -> Text:
    """The document itself, or what was written or checked."""
    if "openapi" in result:
        return Text(json.dumps(result, sort_keys=True, indent=2))
    done = [f"wrote {result['out']}"] if result["out"] else []
    done += [f"{result['checked']} is up to date"] if result["checked"] else []
    return Text("; ".join(done))


# ---- commands ---------------------------------------------------------------------


@api_app.command("serve", epilog="Example: triage-ml api serve --port 8100")
def serve_command(
    ctx: typer.Context,
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    allow_remote: AllowRemote = False,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Serve the ticket events API with the champion until stopped (SIGTERM or Ctrl-C)."""
    given = options(ctx, as_json, config)[1]
    invoke(
        ctx,
        lambda settings: serve(
            settings,
            (host, port, workers),
            allow_remote,
            given.resolve() if given is not None else config_file(),
        ),
        render_served,
        as_json,
        config,
    )


@token_app.command("create", epilog="Example: triage-ml api token create --name zendesk")
def token_create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name to know the token by.")],
    scope: Annotated[str, typer.Option("--scope", help="read or write.")] = "write",
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Create a bearer token and print it once (the store keeps only its SHA-256)."""
    invoke(ctx, lambda settings: create_token(settings, name, scope), render_token, as_json, config)


@token_app.command("list", epilog="Example: triage-ml api token list --json")
def token_list_command(
    ctx: typer.Context, as_json: JsonFlag = False, config: ConfigFile = None
) -> None:
    """The API's tokens: name, scope, when created, last used and revoked."""
    invoke(ctx, list_tokens, render_tokens, as_json, config)


@token_app.command("revoke", epilog="Example: triage-ml api token revoke zendesk")
def token_revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name.", show_default=False)],
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Revoke a token: requests carrying it get 401 from now on."""
    invoke(
        ctx,
        lambda settings: revoke_token(settings, name),
        lambda result: Text(f"token '{result['name']}' revoked"),
        as_json,
        config,
    )


@api_app.command("openapi", epilog="Example: triage-ml api openapi --check docs/api/openapi.json")
def openapi_command(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Write the document here.")] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="Fail unless this file is the document.")
    ] = None,
    as_json: JsonFlag = False,
    config: ConfigFile = None,
) -> None:
    """Print, write or check the API's OpenAPI document (checked in as docs/api/openapi.json)."""
    invoke(ctx, lambda settings: openapi(out, check), render_openapi, as_json, config)


def register(app: typer.Typer) -> None:
    """Add the ``api`` command group (with its ``token`` group) to the ``triage-ml`` app."""
    api_app.add_typer(token_app, name="token")
    app.add_typer(api_app, name="api", rich_help_panel=PANEL)
