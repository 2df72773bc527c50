"""A throwaway PostgreSQL server for tests: initdb, start on loopback, fresh databases, stop.

Plain functions and one small class, no pytest: the session fixture in
``tests/fixtures_postgres.py`` uses them, and so can any test or script that
needs a real server (for example MLflow's backend store next to the ticket
store). PostgreSQL refuses to run as root, so as root every server command
runs as the ``postgres`` OS user (``runuser -u postgres --``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from servers import free_port

SERVER_USER = "postgres"  # the OS user the server runs as when we are root
DB_USER = "postgres"  # the database superuser initdb creates

# Speed over durability: the data directory is thrown away after the session.
TEST_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


class PostgresStartError(RuntimeError):
    """The PostgreSQL binaries exist but the server could not be set up or started."""


def find_bin_dir(
    path: str | None = None, pattern: str = "/usr/lib/postgresql/*/bin"
) -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Looked for on ``path`` (default PATH) first, then ``pattern``, newest version first.

    Returns:
        The directory, or None when no PostgreSQL binaries exist at all.
    """
    on_path = shutil.which("pg_ctl", path=path)
    if on_path and shutil.which("initdb", path=path):
        return Path(os.path.realpath(on_path)).parent
    for candidate in sorted(glob.glob(pattern), key=_version_key, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; anyone else runs it as themselves.
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresStartError(
            f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
        )


def _server_owned_dir(prefix: str) -> Path:
    """A new temp directory the server's OS user owns (tmp_path is root-only when we are root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


@dataclass
class PostgresServer:
    """One running PostgreSQL server on 127.0.0.1 with trust authentication."""

    bin_dir: Path
    root: Path
    port: int
    started_seconds: float = 0.0
    _counter: int = field(default=0, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """The Unix socket directory (inside the temp dir, never /var/run/postgresql)."""
        return self.root / "sock"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"{driver}://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create_database(self, prefix: str = "t") -> str:
        """Create a fresh, uniquely named, empty database; its ``postgresql+psycopg://`` URL."""
        self._counter += 1
        name = f"{prefix}_{self._counter}_{uuid.uuid4().hex[:8]}".lower()
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (from :meth:`create_database`), closing its connections."""
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``) and remove its directory."""
        subprocess.run(
            _as_server_user(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                ]
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _write_settings(server: PostgresServer) -> None:
    lines = {
        **TEST_SETTINGS,
        "port": str(server.port),
        "unix_socket_directories": f"'{server.socket_dir}'",
    }
    with open(server.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            "\n# triage-ml test server\n" + "".join(f"{k} = {v}\n" for k, v in lines.items())
        )


def start(bin_dir: Path, prefix: str = "triage-pg-") -> PostgresServer:
    """initdb a temporary cluster and start it on a free loopback port.

    Args:
        bin_dir: where ``initdb`` and ``pg_ctl`` live (see :func:`find_bin_dir`).
        prefix: name prefix of the temporary directory.

    Returns:
        The running server; call :meth:`PostgresServer.stop` when done.

    Raises:
        PostgresStartError: initdb or the start failed (the directory is removed).
    """
    began = time.perf_counter()
    server = PostgresServer(bin_dir=bin_dir, root=_server_owned_dir(prefix), port=free_port())
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                DB_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        _run(["mkdir", "-p", str(server.socket_dir)], "mkdir socket dir")
        _write_settings(server)
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(server.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(server.root / "server.log"),
            ],
            "pg_ctl start",
        )
    except PostgresStartError as exc:
        log = server.root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        server.stop()
        raise PostgresStartError(f"{exc}\nserver log:\n{tail}" if tail else str(exc)) from None
    except BaseException:
        server.stop()
        raise
    server.started_seconds = time.perf_counter() - began
    return server
