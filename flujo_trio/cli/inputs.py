"""Reading a run's input or a person's answer from the command line.

One rule for ``run --input`` and ``resume --input``: text that parses as JSON is that
JSON value, other plain text is the string itself. Text that starts like JSON (``{``,
``[`` or ``"``) but does not parse is refused, because taking a typo'd object as a
string only fails later, deep in a step, with an error that no longer names the
input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from ..errors import FlujoTrioError

JSON_STARTS = ("{", "[", '"')


class InputError(FlujoTrioError):
    """An input given on the command line cannot be used; the message says how to fix it."""


class _Constant(ValueError):
    """``NaN``/``Infinity`` met while parsing: not JSON, so such text stays a string."""


#: Python refuses ints of more digits than ``sys.get_int_max_str_digits()`` (4300).
_TOO_LONG = (
    "holds a number with more digits than Python reads (4300): give it as a JSON "
    'string ("...") if it is an identifier'
)


def _no_constant(name: str) -> NoReturn:
    raise _Constant(name)


def parse_value(text: str, option: str = "--input") -> Any:
    """The JSON value ``text`` spells, else ``text`` itself; malformed JSON is an error."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(_too_deep(option)) from None
    except ValueError as error:
        if not isinstance(error, json.JSONDecodeError | _Constant):
            # Python's limit on digits in an int: the number would silently become text.
            raise InputError(f"{option} {_TOO_LONG}") from None
        if not text.lstrip().startswith(JSON_STARTS):
            return text
        where = (
            f"{error.msg} at line {error.lineno} column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else str(error)
        )
        raise InputError(
            f"{option} starts like JSON but is not valid JSON ({where}): fix the JSON, "
            'or write text that starts with {, [ or " as a JSON string'
        ) from None


def _too_deep(what: str) -> str:
    return (
        f"{what} is JSON nested too deeply to read (Python's recursion limit): give a flatter value"
    )


def _decoded(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{what} is not UTF-8 text (byte {error.start}: {error.reason}): "
            "give UTF-8 text, or encode binary data (e.g. as base64) first"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def read_stdin() -> str:
    """Standard input (UTF-8), less the one trailing newline that ``echo`` and editors
    add. Read as bytes: the locale's decoding would smuggle undecodable bytes in as
    lone surrogates, refused only later as unstorable text."""
    text = _decoded(sys.stdin.buffer.read(), "standard input")
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def run_input(text: str | None, path: Path | None) -> Any:
    """The first step's input from ``--input TEXT``, ``--input -`` or ``--input-file PATH``."""
    if text is not None and path is not None:
        raise InputError("give --input or --input-file, not both")
    if text is None and path is None:
        raise InputError(
            "no input: give the first step's input with --input TEXT (JSON or text), "
            "--input - (read standard input) or --input-file PATH"
        )
    if text is not None:
        return parse_value(read_stdin() if text == "-" else text)
    assert path is not None
    try:
        content = _decoded(path.read_bytes(), f"input file {path}")
    except OSError as error:
        raise InputError(f"cannot read input file {path}: {error.strerror or error}") from None
    if path.suffix != ".json":
        return content
    try:
        return json.loads(content, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(_too_deep(f"input file {path}")) from None
    except ValueError as error:
        if isinstance(error, _Constant):
            raise InputError(
                f"input file {path} holds {error}, which is not JSON: "
                "only finite numbers can be given"
            ) from None
        if not isinstance(error, json.JSONDecodeError):
            raise InputError(f"input file {path} {_TOO_LONG}") from None
        raise InputError(
            f"input file {path} is not valid JSON ({error.msg} at line {error.lineno} "
            f"column {error.colno}): fix it, or give the text in a file not named .json"
        ) from None


def answer_input(text: str | None) -> Any:
    """A person's answer from ``resume --input``: ``None`` when none was given."""
    if text is None:
        return None
    return parse_value(read_stdin() if text == "-" else text)
