"""Errors of the warehouse package: each message names the file or setting and the fix."""


class WarehouseError(Exception):
    """Root of every error the warehouse raises."""


class WarehouseMissingError(WarehouseError):
    """The warehouse file does not exist yet (nothing has been ingested)."""


class WarehouseBusyError(WarehouseError):
    """The lock could not be had within the bounded wait."""


class SchemaVersionError(WarehouseError):
    """The file was written by a newer hybridlens than this one."""


class ConfigError(WarehouseError):
    """A config file has an unknown key or a bad value."""
