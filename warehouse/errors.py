"""Errors of the warehouse package: each message names the file or setting and the fix.

Two axes, because a caller needs both answers: *which package* failed (every error here is
a `WarehouseError`, so `except WarehouseError` catches the whole package) and *whose move
it is* (`UserError`: the person at the keyboard can fix it — usage, config, a missing
warehouse, a file that cannot be read; the command line exits 2 with the sentence, and
anything that is not a `UserError` is a bug or an outage, never blamed on the user).
`UserError` lives here, in the package that imports nothing of ours, so `ingest/` and
`hybridlens/` can mark their own errors with it.
"""


class UserError(Exception):
    """Marker: the message tells the user what to change; the command line exits 2."""


class WarehouseError(Exception):
    """Root of every error the warehouse raises."""


class WarehouseMissingError(WarehouseError, UserError):
    """The warehouse file does not exist yet (nothing has been ingested)."""


class WarehouseBusyError(WarehouseError):
    """The lock could not be had within the bounded wait."""


class ReadTimeoutError(WarehouseError):
    """A read ran past its time limit and DuckDB was told to stop it."""


class SchemaVersionError(WarehouseError):
    """The file was written by a newer hybridlens than this one."""


class ConfigError(WarehouseError, UserError):
    """A config file has an unknown key or a bad value, or cannot be read at all."""
