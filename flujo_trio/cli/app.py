"""The ``flujo-trio`` command line: run, resume, inspect and draw pipelines, on a SQLite
or PostgreSQL store.

Exit codes: 0 completed, 1 failed, 2 bad usage or input, 3 budget exceeded,
4 paused, 130 interrupted (Ctrl-C; the run is saved and can be resumed),
143 terminated (SIGTERM; saved the same way).
Every error is one line, ``flujo-trio: error: ...``, on standard error.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from .common import EXIT_INTERRUPTED
from .graph import graph_command
from .running import resume_command, run_command
from .runs import runs_group

#: Raised (click >= 8.2) for a group called without a command; older clicks print help.
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    cls for cls in [getattr(click.exceptions, "NoArgsIsHelpError", None)] if cls is not None
)


class _OneLineErrors(click.Group):
    """Click's usage errors as one ``flujo-trio: error:`` line with exit code 2, like ours."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.ClickException as error:
            if isinstance(error, _NO_ARGS_IS_HELP):  # a bare group: its help is the answer
                error.show()
                sys.exit(error.exit_code)
            hint = ""
            if isinstance(error, click.UsageError) and error.ctx is not None:
                hint = f" (see: {error.ctx.command_path} --help)"
            click.echo(f"flujo-trio: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("flujo-trio: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="flujo-trio", message="%(prog)s %(version)s"
)
def main() -> None:
    """Run, resume, inspect and draw flujo-trio pipelines."""


main.add_command(run_command)
main.add_command(resume_command)
main.add_command(graph_command)
main.add_command(runs_group)
