"""A throwaway PostgreSQL server for the tests and the benchmarks.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port (and a
socket in that directory), password authentication (so the tests can check that no
password leaks into an error), torn down with the directory at the end. ``initdb``
refuses to run as root, so as root the server runs as the ``postgres`` OS user.

``python -m tests.pg_server`` starts one and prints its DSN, for trying things by hand
(stop it with Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Set by a developer who wants the tests to use their own server.
DSN_VARIABLE = "FLUJO_TRIO_TEST_POSTGRES_DSN"

#: Test settings trade crash safety of the throwaway server for speed; the benchmark's
#: server keeps PostgreSQL's defaults (every commit flushed to disk).
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class ServerUnavailable(RuntimeError):
    """No server could be started here; the message says what to install or set."""


def bindir() -> Path:
    """Where initdb and pg_ctl are: Debian's versioned directory, else the PATH."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    raise ServerUnavailable(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: install them "
        "(Debian: apt-get install postgresql) or point the tests at a server of yours "
        f"with {DSN_VARIABLE}=postgresql://user:password@host/dbname"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise ServerUnavailable(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@contextlib.contextmanager
def throwaway_server(*, settings: tuple[str, ...] = FAST) -> Iterator[str]:
    """Start a server for the duration of the block; yields its DSN."""
    bin_dir = bindir()
    home = Path(tempfile.mkdtemp(prefix="flujo-trio-pg-"))
    try:
        data, password = home / "data", secrets.token_hex(12)
        (home / "pw").write_text(password)
        if os.geteuid() == 0:
            shutil.chown(home, "postgres", "postgres")
            shutil.chown(home / "pw", "postgres", "postgres")
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "flujo",
                f"--pwfile={home / 'pw'}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        port = _free_port()
        options = [f"-p {port}", f"-k {home}", "-c listen_addresses=127.0.0.1"]
        options += ["-c max_connections=200", *(f"-c {s}" for s in settings)]
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(home / "server.log"),
                "-o",
                " ".join(options),
                "-w",
                "-t",
                "60",
                "start",
            ],
            "pg_ctl start",
        )
        try:
            yield f"postgresql://flujo:{password}@127.0.0.1:{port}/postgres"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    import signal
    import sys
    import time

    # A background job ignores Ctrl-C: let SIGTERM tear the server down too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with throwaway_server() as dsn:
        print(dsn, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
