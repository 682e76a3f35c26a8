"""How an exception reaches the person who ran `hybridlens`: one sentence and an exit code.

The rule is that a bug is a bug. An error the user can fix (`UserError`: bad usage, bad
config, no warehouse, a file that cannot be read) is their sentence and exit 2; a known
failure of the warehouse or an ingest (busy, newer schema, a load that failed) is its
sentence and exit 1; anything else is ours: one line that says so, exit 70 (EX_SOFTWARE,
sysexits.h), and the traceback only with -v, so a script sees a stable status and a
person is not handed a stack they cannot act on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

from ingest.errors import IngestError
from warehouse.errors import UserError, WarehouseError

EXIT_OK = 0
EXIT_FAILED = 1  # a load quarantined or failed something, or a known failure
EXIT_USAGE = 2  # bad usage or config, no warehouse: the message says what to change
EXIT_INTERNAL = 70  # a bug in hybridlens (EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE), as `yes | head` does


class UsageError(UserError):
    """A flag or argument the command cannot use; argparse's own errors exit 2 as well."""


def report(exc: BaseException, *, verbose: bool) -> int:
    """Print `exc` for a person on stderr and return the exit code it maps to."""
    if isinstance(exc, UserError):
        _say(f"hybridlens: error: {exc}")
        return EXIT_USAGE
    if isinstance(exc, WarehouseError | IngestError):
        if verbose:
            traceback.print_exception(exc, file=sys.stderr)
        _say(f"hybridlens: error: {exc}")
        return EXIT_FAILED
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    what = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    _say(
        f"hybridlens: internal error: {type(exc).__name__}: {what}; "
        + ("the traceback is above" if verbose else "run with -v for the traceback")
    )
    return EXIT_INTERNAL


def broken_pipe() -> int:
    """The reader of stdout is gone (`| head`): stop writing quietly, as Unix tools do.

    Python's docs give the recipe: point stdout at /dev/null so the interpreter's final
    flush has nowhere to fail, then exit with the status a SIGPIPE would give.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout has no file descriptor (captured in tests)
        pass
    return EXIT_BROKEN_PIPE


def _say(text: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # stderr gone: the status says it
        print(text, file=sys.stderr, flush=True)
