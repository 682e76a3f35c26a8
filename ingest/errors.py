"""Errors of the ingest package."""


class IngestError(Exception):
    """Root of every ingest error: a whole input could not be read."""


class RecordError(IngestError):
    """One record is bad; it goes to quarantine and the rest of its input still loads."""
