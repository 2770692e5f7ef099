"""Regulator export bundles (CONTRACT section 5): a folder of journal.jsonl + manifest.json."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from contract import journal as J
from contract.verify import Problem, Report, verify_entries
from contract.video import check_clips

JOURNAL_FILE = "journal.jsonl"
MANIFEST_FILE = "manifest.json"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")
    edge_id: str
    jurisdiction: str
    from_seq: int
    to_seq: int
    count: int
    head_hash: str
    journal_sha256: str
    created_ts: int
    anchor: str = J.GENESIS_PREV  # `prev` of the first entry; continuity is checked from here


def write_bundle(out: Path, entries: Iterable[dict[str, Any]], *, edge_id: str, jurisdiction: str) -> Manifest:
    out.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    count = 0
    with open(out / JOURNAL_FILE, "wb") as f:
        for e in entries:
            line = (J.entry_line(e) + "\n").encode("utf-8")
            f.write(line)
            h.update(line)
            first = first or e
            last = e
            count += 1
    m = Manifest(
        edge_id=edge_id,
        jurisdiction=jurisdiction,
        from_seq=first["seq"] if first else 0,
        to_seq=last["seq"] if last else 0,
        count=count,
        head_hash=last["hash"] if last else J.GENESIS_PREV,
        journal_sha256=h.hexdigest(),
        created_ts=int(time.time() * 1000),
        anchor=first["prev"] if first else J.GENESIS_PREV,
    )
    (out / MANIFEST_FILE).write_text(json.dumps(m.model_dump(), indent=2, sort_keys=True) + "\n")
    return m


def verify_bundle(folder: Path) -> Report:
    """Check a bundle offline; report.first_bad_seq names the first bad entry."""
    report = Report()
    try:
        manifest = Manifest.model_validate_json((folder / MANIFEST_FILE).read_text())
        raw = (folder / JOURNAL_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        report.problems.append(Problem(None, f"unreadable bundle: {exc}"))
        return report
    entries: list[dict[str, Any]] = []
    for n, line in enumerate(J.split_records(raw.decode("utf-8", errors="replace")), start=1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            # Name the seq this line should have carried.
            seq = manifest.from_seq + n - 1
            report.problems.append(Problem(seq, f"line {n} is not valid JSON"))
            report.entries = len(entries)
            return report
    anchor = manifest.anchor if manifest.from_seq > 1 else J.GENESIS_PREV
    report = verify_entries(entries, first_seq=manifest.from_seq or 1, anchor=anchor)
    # A chain that verifies but stops short of the manifest lost its tail: the first bad entry
    # is the first missing one.
    last_seq = entries[-1].get("seq") if entries else manifest.from_seq - 1
    short = isinstance(last_seq, int) and last_seq < manifest.to_seq
    where = report.first_bad_seq if report.problems else (last_seq + 1 if short else manifest.to_seq)
    if hashlib.sha256(raw).hexdigest() != manifest.journal_sha256:
        report.problems.append(Problem(where, "journal.jsonl does not match journal_sha256"))
    if entries and (last_seq != manifest.to_seq or entries[-1].get("hash") != manifest.head_hash):
        report.problems.append(Problem(where, "manifest head does not match the journal"))
    if len(entries) != manifest.count:
        report.problems.append(Problem(where, "manifest count does not match the journal"))
    report.problems.extend(check_clips(folder, entries, getattr(manifest, "videos", None)))
    return report
