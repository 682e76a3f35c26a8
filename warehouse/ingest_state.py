"""What the warehouse remembers about inputs and configs between runs.

Resume offsets and content hashes let a job skip a file it already loaded and resume one
still being written; the stored config lets a later command on the same warehouse see the
environments and policies the load was given. All of it lives in `ingest_log` and
`config`, so it is in the same transactional file as the data it describes.
"""

from __future__ import annotations

from pathlib import Path

from warehouse.db import Warehouse, one


def content_hash(path: Path, limit: int | None = None) -> str:
    """blake2b of the first `limit` bytes of a file (all of it by default)."""
    import hashlib  # here: its 10 ms would be paid by every command reading the config

    h = hashlib.blake2b(digest_size=16)
    remaining = limit
    with path.open("rb") as fh:
        while True:
            size = 1 << 20 if remaining is None else min(1 << 20, remaining)
            if size == 0:
                break
            chunk = fh.read(size)
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return h.hexdigest()


def store_config(warehouse: Warehouse, origin: str, body: str) -> None:
    """Store a config that differs from the last one, and recompute the cost model and the
    allocation it changes in the same transaction, so neither lags the stored config."""
    from warehouse import (  # they import the config schema, which most callers skip
        allocation,
        cost_ledger,
    )

    with warehouse.write() as con:
        last = one(con, "SELECT body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
        if not last or last[0] != body:
            con.execute(
                "INSERT INTO config VALUES (now(), $origin, $body)",
                {"origin": origin, "body": body},
            )
            cost_ledger.refresh_config(con, last[0] if last else None, body)
            allocation.refresh_all(con, allocation.stored(con))


def stored_config(warehouse: Warehouse) -> tuple[str, str] | None:
    """(origin, body) of the config last stored, or None."""
    if not warehouse.exists():
        return None
    with warehouse.read() as con:
        row = one(con, "SELECT origin, body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
    return (row[0], row[1]) if row else None


def file_state(warehouse: Warehouse, uri: str) -> tuple[str | None, int | None] | None:
    """(content hash, byte offset) of the last successful load of `uri`, if any."""
    if not warehouse.exists():
        return None
    with warehouse.read() as con:
        row = one(
            con,
            "SELECT content_hash, byte_offset FROM ingest_log WHERE uri = $uri AND status != "
            "'failed' ORDER BY load_id DESC LIMIT 1",
            {"uri": uri},
        )
    return (row[0], row[1]) if row else None


def file_states(warehouse: Warehouse, uris: list[str]) -> dict[str, tuple[str, int]]:
    """uri -> (content hash, byte offset) of its last successful load, for many files at once."""
    if not warehouse.exists() or not uris:
        return {}
    with warehouse.read() as con:
        con.execute(
            """SELECT uri, arg_max(content_hash, load_id), arg_max(byte_offset, load_id)
               FROM ingest_log
               WHERE list_contains($uris, uri) AND status != 'failed'
                 AND content_hash IS NOT NULL AND byte_offset IS NOT NULL
               GROUP BY uri""",
            {"uris": uris},
        )
        rows = con.fetchall()
    return {uri: (h, int(offset)) for uri, h, offset in rows}


def log_failure(
    warehouse: Warehouse, *, source: str, uri: str, error: str, location: str = "file"
) -> int:
    """Record an input that could not be read or published (one row, status 'failed')."""
    with warehouse.write() as con:
        load_id = int(one(con, "SELECT nextval('load_ids')")[0])  # type: ignore[index]
        con.execute(
            "INSERT INTO quarantine VALUES ($id, $source, $uri, $loc, $err, NULL, now())",
            {"id": load_id, "source": source, "uri": uri, "err": error, "loc": location},
        )
        con.execute(
            "INSERT INTO ingest_log VALUES ($id, $source, $uri, NULL, NULL, 0, 0, 1, NULL, now(), "
            "0, 'failed', $err)",
            {"id": load_id, "source": source, "uri": uri, "err": error},
        )
    return load_id
