"""What every command shares: exit codes, the one-line error, ``--db``, store calls.

Exit codes: 0 completed, 1 failed, 2 bad usage or input, 3 budget exceeded,
4 paused, 130 interrupted (Ctrl-C; the run is saved and can be resumed),
143 terminated (SIGTERM; saved the same way).
Every error is one line, ``flujo-trio: error: ...``, on standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
import trio

from ..context import RunStatus
from ..errors import ConfigurationError, ResumeError, SerializationError, StoreError
from ..state.protocol import StateStore
from .inputs import InputError
from .stores import missing, open_store, shown
from .targets import TargetError

T = TypeVar("T")

EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.FAILED: 1,
    RunStatus.BUDGET_EXCEEDED: 3,
    RunStatus.PAUSED: 4,
    RunStatus.CANCELLED: 130,
}
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it

#: Errors that mean "your input is wrong": one line on stderr, exit code 2.
INPUT_ERRORS = (
    TargetError,
    InputError,
    StoreError,
    SerializationError,
    ResumeError,
    ConfigurationError,
)

db_option = click.option(
    "--db",
    default="flujo_trio.db",
    show_default=True,
    envvar="FLUJO_TRIO_DB",
    help="SQLite store file, or a postgresql:// DSN (env FLUJO_TRIO_DB).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (the default when not on a terminal)."
)

output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)


def fail(message: str) -> NoReturn:
    click.echo(f"flujo-trio: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def write_output(text: str, output: Path | None) -> None:
    """``text`` on standard output, or into ``output`` (then a note on standard error);
    a file that cannot be written is the one-line error."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or error}")
    click.echo(f"wrote {output}", err=True)


def machine_output(as_json: bool) -> bool:
    """JSON when asked for, and whenever standard output is not a terminal."""
    return as_json or not sys.stdout.isatty()


def store_call(db: str, call: Callable[[StateStore], Awaitable[T]]) -> T:
    """``call(store)`` on the store ``db`` names (closed afterwards); a missing SQLite
    file, or any input error, is the one-line error (nothing is created)."""
    if missing(db):
        fail(f"no store at {shown(db)}: give the store the runs were made with as --db")

    async def with_store() -> T:
        store = open_store(db)
        try:
            return await call(store)
        finally:
            await store.aclose()

    try:
        return trio.run(with_store)
    except INPUT_ERRORS as error:
        fail(str(error))
