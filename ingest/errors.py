"""Errors of the ingest package: the one root every ingest module raises under.

`IngestError` is the package's root (the receiver's and the OTLP parser's errors subclass
it), so a caller catches "ingest failed" with one clause. An error the user can fix
(a path that cannot be read, a bad flag for a collector) also inherits
`warehouse.errors.UserError`, which the command line maps to exit 2.
"""

from warehouse.errors import UserError

__all__ = ["IngestError", "RecordError", "UserError"]


class IngestError(Exception):
    """Root of every ingest error: a whole input could not be read."""


class RecordError(IngestError):
    """One record is bad; it goes to quarantine and the rest of its input still loads."""
