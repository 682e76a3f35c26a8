"""AWS CUR manifests: which of the files given to `ingest billing` are one delivery.

A CUR 2.0 export writes its parts under `data/BILLING_PERIOD=YYYY-MM/` and, after the last
of them, `metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` listing them in
`dataFiles` (docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html); a
legacy CUR writes `<report>-Manifest.json` beside its assembly folders, listing the current
assembly's parts in `reportKeys` (billing-reports-costusage-files). Parts of earlier runs
stay beside them (a run with fewer parts does not delete the others; "create new" keeps
every run), so loading every file of the folder would count a month several times, and
loading a run with a part missing would replace the month with part of it.

So a manifest decides its scope: the files of its billing period under the export (the
folder above `metadata/`), or, for a manifest elsewhere, everything under its own folder.
In each scope the newest manifest (by modification time: `aws s3 sync` keeps S3's) wins;
exactly the files it lists load, matched to local files by the longest tail of their
path; every other file of the scope is left out and counted. A manifest that is not JSON,
or that lists a part that is not there, holds its whole scope back with one sentence, so
the period keeps its previous delivery. Files in no manifest's scope load as they are.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingest.files import Refused, find_files, printable, uri_of

SUFFIX = "manifest.json"
PERIOD = re.compile(r"BILLING_PERIOD=\d{4}-\d{2}")
MAX_BYTES = 64 << 20  # a manifest lists file names; anything bigger is not one
SUPERSEDED = "CUR data files left out: not listed by the newest manifest of their folder"
OLDER = "older CUR manifests left out: a newer manifest of the same folder replaces them"
FOREIGN = "JSON manifests that are not AWS CUR manifests (no dataFiles or reportKeys), not read"
NOT_OURS = "it has no `dataFiles` (CUR 2.0) or `reportKeys` (legacy CUR) list"


def is_manifest(path: Path) -> bool:
    """Named like a manifest: a CUR's, or another export's (Azure writes `manifest.json`)."""
    return path.name.lower().endswith(SUFFIX)


def is_cur_manifest(path: Path) -> bool:
    """A manifest that lists CUR parts, or one too broken to tell (then it holds its folder
    back: a manifest cut short while AWS writes it must not let stale parts load)."""
    return is_manifest(path) and keys_of(path)[1] != NOT_OURS


@dataclass(frozen=True)
class Scope:
    """Where a manifest's delivery lies: under `root`, in `period`'s folders when set."""

    root: Path
    period: str | None

    def holds(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return False
        return self.period is None or self.period in rel.parts[:-1]


@dataclass
class Selection:
    """The files to read, in order (data files and the manifests that chose them), the
    manifests refused, and what each chosen manifest left out."""

    files: list[Path] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    notes: dict[Path, Counter[str]] = field(default_factory=dict)


def scope_of(manifest: Path) -> Scope:
    """The export and billing period of a manifest under `metadata/BILLING_PERIOD=…/`,
    else its own folder."""
    parts = manifest.parent.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "metadata":
            period = next((p for p in parts[i + 1 :] if PERIOD.fullmatch(p)), None)
            if period:
                return Scope(Path(*parts[:i]), period)
    return Scope(manifest.parent, None)


def keys_of(manifest: Path) -> tuple[list[str] | None, str]:
    """The part keys a manifest lists, or None and why it is not a manifest."""
    try:
        if manifest.stat().st_size > MAX_BYTES:
            return None, f"it is bigger than {MAX_BYTES >> 20} MiB"
        doc = json.loads(manifest.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        return None, f"it cannot be read ({exc.strerror or exc})"
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return None, f"it is not JSON ({str(exc).splitlines()[0][:120]})"
    listed = doc.get("dataFiles", doc.get("reportKeys")) if isinstance(doc, dict) else None
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
        return None, NOT_OURS
    return listed, ""


def tail(key: str) -> list[str]:
    """A key's path parts without the `s3://bucket/` in front."""
    key = re.sub(r"^s3://[^/]*/", "", key)
    return [p for p in key.split("/") if p]


def match(key: str, candidates: list[Path]) -> list[Path]:
    """The local files whose path ends with the longest tail of `key` (the file name at
    least); several when that tail is not enough to tell them apart."""
    want = tail(key)
    best: list[Path] = []
    longest = 0
    for path in candidates:
        have = path.parts
        n = 0
        while n < min(len(want), len(have)) and want[-1 - n] == have[-1 - n]:
            n += 1
        if n and n > longest:
            best, longest = [path], n
        elif n and n == longest:
            best.append(path)
    return best


def select(discovered: list[Path]) -> Selection:
    """Which files to read: the files of each manifest's scope (found on disk, so the
    parts come along when only the `metadata/` folder is given) narrowed to what its
    newest manifest lists; everything else as given."""
    universe = list(dict.fromkeys(discovered))
    known = set(universe)
    for manifest in [p for p in discovered if is_cur_manifest(p)]:
        scope = scope_of(manifest)
        for path in sorted(_listing(scope.root), key=os.fsencode):
            if scope.holds(path) and path not in known:
                known.add(path)
                universe.append(path)
    manifests = sorted(
        (p for p in universe if is_cur_manifest(p)), key=lambda p: len(scope_of(p).root.parts)
    )
    groups: dict[Scope, list[Path]] = {}
    for manifest in manifests:
        outer = next((s for s in groups if s.holds(manifest)), None)
        groups.setdefault(outer or scope_of(manifest), []).append(manifest)
    picked = dict.fromkeys(universe, True)  # path -> read it
    selection = Selection()
    for scope, members in groups.items():
        files = [p for p in universe if scope.holds(p)]
        for path in files:
            picked[path] = False
        data = sorted((p for p in files if not is_manifest(p)), key=os.fsencode)
        chosen, refusal, note = _decide(members, data)
        if refusal:
            selection.refused.append(refusal)
            continue
        assert chosen is not None
        for path in chosen:
            picked[path] = True
        selection.notes[chosen[-1]] = note
    selection.files = [p for p, keep in picked.items() if keep]
    return selection


def _decide(
    members: list[Path], data: list[Path]
) -> tuple[list[Path] | None, Refused | None, Counter[str]]:
    """The data files of one scope to read and its manifest last, or the refusal."""
    parsed = [(m, *keys_of(m)) for m in members]
    bad = [(m, why) for m, keys, why in parsed if keys is None]
    if bad:
        manifest, why = bad[0]
        return None, _refused(manifest, f"is named like a CUR manifest, but {why}", data), Counter()
    newest = max(members, key=lambda m: (_mtime(m), -len(m.parts), os.fsencode(m)))
    keys = next(k for m, k, _ in parsed if m == newest) or []
    chosen: list[Path] = []
    for key in keys:
        found = match(key, data)
        if not found:
            text = f"lists the part {key[:200]!r}, which is not among the files beside it"
            return None, _refused(newest, text, data), Counter()
        if len(found) > 1:
            text = (
                f"lists the part {key[:200]!r}, which matches {len(found)} files beside it "
                "(give one export's folder)"
            )
            return None, _refused(newest, text, data), Counter()
        if found[0] not in chosen:
            chosen.append(found[0])
    note: Counter[str] = Counter()
    left = len(data) - len(chosen)
    if left:
        note[SUPERSEDED] += left
    if len(members) > 1:
        note[OLDER] += len(members) - 1
    return [*sorted(chosen, key=os.fsencode), newest], None, note


def _refused(manifest: Path, what: str, data: list[Path]) -> Refused:
    return Refused(
        uri_of(manifest),
        f"{printable(manifest)} {what}: none of the {len(data)} data files of its delivery "
        "were loaded, so their billing period keeps its previous delivery",
    )


def _listing(root: Path) -> list[Path]:
    return [p for p in find_files([root]) if isinstance(p, Path)]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def left_out(manifest: Path) -> Counter[str]:
    """What a chosen manifest left out, for the load report: its selection, made again."""
    if not is_cur_manifest(manifest):
        return Counter({FOREIGN: 1})
    return select([manifest]).notes.get(manifest, Counter())
