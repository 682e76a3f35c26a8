"""The hybridlens config: which one applies, and reading it from a file or the warehouse.

It lives in `warehouse/` because every layer reads it and the warehouse stores the last
one given, so `hybridlens demo` followed by `hybridlens metrics` sees the same SLOs.
Resolution order: --config, HYBRIDLENS_CONFIG, ./hybridlens.toml, the stored config,
built-in defaults. The sections and keys are declared in `config_schema`; this module is
the way in for everyone else, so `from warehouse.config import Config` keeps working.

Whatever is wrong with a file — a folder, not UTF-8, unreadable, nested past what the
TOML parser can follow — it is a ConfigError whose sentence names the file, so the
command line can print it and exit 2 rather than show a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from warehouse.config_fields import key_paths as _key_paths
from warehouse.config_schema import (
    CLASSIFICATIONS,
    DEFAULT_DENY,
    KINDS,
    Config,
    DashboardSettings,
    Environment,
    GpuPool,
    IngestPolicy,
    Model,
    Slo,
    parse,
)
from warehouse.errors import ConfigError

__all__ = [
    "CLASSIFICATIONS",
    "DEFAULT_DENY",
    "KINDS",
    "MAX_FILE_BYTES",
    "Config",
    "DashboardSettings",
    "Environment",
    "GpuPool",
    "IngestPolicy",
    "Model",
    "Slo",
    "find_file",
    "key_paths",
    "load_file",
    "parse",
    "resolve",
]

# A config is a few kilobytes; reading stops past this, so `--config /dev/zero` fails fast.
MAX_FILE_BYTES = 16 * 1_048_576


def key_paths() -> list[str]:
    """Every key a config accepts, as a path: `environments[].slo.availability`."""
    return _key_paths(Config)


def load_file(path: Path | str) -> Config:
    path = Path(path)
    return parse(_read_toml(path), str(path))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a config file: name the TOML file in it")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a name with a NUL byte in it
        raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_FILE_BYTES // 1_048_576} MiB, which no config is; "
            "is it the right file?"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None
    import tomllib  # only a file needs parsing; the stored config is JSON

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: not valid TOML: arrays or tables nested too deeply to read"
        ) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def find_file(explicit: Path | str | None) -> Path | None:
    """The config file that applies, or None when the stored config or defaults apply."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("HYBRIDLENS_CONFIG")
    if env:
        return Path(env)
    local = Path("hybridlens.toml")
    return local if local.exists() else None


def resolve(explicit: Path | str | None, warehouse: Any = None) -> tuple[Config, bool]:
    """The config that applies and whether it came from a file (so a load should store it).

    Order: --config, HYBRIDLENS_CONFIG, ./hybridlens.toml, the config stored in
    `warehouse`, built-in defaults.
    """
    path = find_file(explicit)
    if path is not None:
        return load_file(path), True
    if warehouse is not None:
        from warehouse.ingest_state import stored_config

        stored = stored_config(warehouse)
        if stored:
            origin, body = stored
            return _stored(body, f"{origin} (stored in {warehouse.path})"), False
    return Config(), False


def _stored(body: str, origin: str) -> Config:
    """The stored config, or a way out when it no longer passes: one written by an older
    hybridlens may break a bound added since, and must not stop every command for good."""
    try:
        return Config.from_json(body, origin)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}. That config was stored in the warehouse by an earlier load and no longer "
            "passes validation: pass --config FILE (or set HYBRIDLENS_CONFIG) with the value "
            "fixed; a load given that file (`hybridlens ingest traces ... --config FILE`) "
            "stores it in place of this one"
        ) from None
