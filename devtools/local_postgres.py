"""A real PostgreSQL server on loopback, without Docker, from the machine's own PostgreSQL
binaries (Debian's `postgresql` package: `apt-get install postgresql`), for the tests and the
demo of the summary table.

Each start makes a fresh data directory with password (SCRAM) authentication for TCP
connections, one superuser and one database. Run as root, the server runs as the `postgres`
user (PostgreSQL refuses to run as root).

    python -m devtools.local_postgres up|down [--port 55432]
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg2

from devtools.local_service import LocalService

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_PORT: Final = 55432
DEFAULT_USER: Final = "login_stream"
DEFAULT_PASSWORD: Final = "login-stream"
DEFAULT_DATABASE: Final = "login_stream"
START_TIMEOUT_SECONDS: Final = 60
SERVICE_USER: Final = "postgres"
# The demo's server: its data directory's path is kept here, so `down` finds it.
DEMO_STATE: Final = REPO / ".postgres"


class PostgresError(Exception):
    """The server cannot be started; the message says what to do."""


def server_binaries() -> Path:
    """The directory of `initdb`, `pg_ctl` and `postgres`: Debian's newest major version."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError(
        "no PostgreSQL server binaries found (pg_ctl): install them, e.g. "
        "`apt-get install postgresql` on Debian or Ubuntu"
    )


@dataclass
class LocalPostgres(LocalService):
    """One server; `with LocalPostgres(port) as server:` starts and removes it."""

    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    database: str = DEFAULT_DATABASE
    data_dir: Path | None = None
    _bin: Path = field(default_factory=server_binaries)

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "server.log"

    def start(self) -> None:
        """A fresh data directory, the server started on it, and the database created."""
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="login-stream-postgres-"))
            password_file = self.data_dir / "password"
            password_file.write_text(self.password)
            cluster = self.data_dir / "cluster"
            self._hand_to_service_user(self.data_dir)
            self._run(
                "initdb",
                "--pgdata",
                str(cluster),
                "--username",
                self.user,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
            password_file.unlink()
        self.resume()
        connection = psycopg2.connect(**self.connection(database="postgres"))
        connection.autocommit = True  # CREATE DATABASE runs outside a transaction only
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

    def resume(self) -> None:
        """Start the server on its existing data (after `pause`)."""
        assert self.data_dir is not None
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data_dir / "cluster"),
            "--log",
            str(self.log_path),
            "--options",
            options,
            "--wait",
            f"--timeout={START_TIMEOUT_SECONDS}",
            "start",
        )

    def pause(self) -> None:
        """Stop the server at once (as a crash would), keeping its data for `resume`."""
        assert self.data_dir is not None
        self._run("pg_ctl", "--pgdata", str(self.data_dir / "cluster"), "--mode=immediate", "stop")

    def stop(self) -> None:
        """Stop the server and remove its data."""
        if self.data_dir is None:
            return
        cluster = self.data_dir / "cluster"
        if (cluster / "postmaster.pid").exists():
            self._run("pg_ctl", "--pgdata", str(cluster), "--mode=fast", "--wait", "stop")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir = None

    def connection(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments of `psycopg2.connect` for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": database or self.database,
        }

    def settings(self) -> dict[str, str]:
        """The processor's POSTGRES_* settings for this server."""
        return {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DATABASE": self.database,
        }

    def _hand_to_service_user(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        account = pwd.getpwnam(SERVICE_USER)
        os.chown(path, account.pw_uid, account.pw_gid)
        for child in path.iterdir():
            os.chown(child, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            raise PostgresError(f"{program} failed: {result.stderr.strip()}\n{log}".strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    state = DEMO_STATE / f"{args.port}.datadir"
    try:
        if args.action == "up":
            if state.exists():
                print(f"PostgreSQL already up on port {args.port}")
                return 0
            server = LocalPostgres(port=args.port)
            server.start()
            DEMO_STATE.mkdir(exist_ok=True)
            state.write_text(str(server.data_dir))
            print(
                f"PostgreSQL up on 127.0.0.1:{args.port}, database {server.database}, "
                f"user {server.user}"
            )
        else:
            if not state.exists():
                print(f"no PostgreSQL of ours on port {args.port}")
                return 0
            LocalPostgres(port=args.port, data_dir=Path(state.read_text())).stop()
            state.unlink()
            print(f"PostgreSQL on port {args.port} stopped")
    except PostgresError as error:
        print(f"local_postgres: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
