"""The ingest journal: where a commit goes while the events file is busy.

A checkpoint, a rollup swap, a compaction or a file rewrite holds DuckDB's writer for tens
to hundreds of milliseconds, and DuckDB makes every commit wait for a checkpoint. Browsers
must not wait with it. While the writer is held, a batch is appended to this file instead
(one write, one fdatasync: ~1 ms) and acknowledged; whoever holds the writer, or the next
batch, or a flusher thread, moves the journal's batches into DuckDB in one transaction that
also records the last sequence number applied (table journal_applied). So:

- an acknowledged batch is on disk, in DuckDB or here, never only in memory;
- a batch is applied exactly once: on open, entries at or below the recorded number are
  skipped (a crash between the apply and the truncation), the rest applied in order;
- a torn last entry (a crash in the middle of its write) was never acknowledged: its
  checksum fails, and it is dropped with everything after it.

Entry: seq (8 bytes) | length (4) | crc32 of the payload (4) | payload, big-endian; the
payload is the counters' length (4) | msgpack of (bot hits, excluded hits) | the rows as an
Arrow IPC stream in the events table's schema (nothing when the batch has no rows)."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pyarrow as pa

_HEADER = struct.Struct(">QII")
_COUNTERS = struct.Struct(">I")

BotHits = list[tuple[str, int, int]]
ExcludedHits = list[tuple[str, int, str, int]]


@dataclass
class Entry:
    seq: int
    table: pa.Table | None
    bots: BotHits = field(default_factory=list)
    excluded: ExcludedHits = field(default_factory=list)


def _encode(table: pa.Table | None, bots: BotHits, excluded: ExcludedHits) -> bytes:
    counters = msgspec.msgpack.encode((bots, excluded))
    parts = [_COUNTERS.pack(len(counters)), counters]
    if table is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        parts.append(sink.getvalue().to_pybytes())
    return b"".join(parts)


def _decode(seq: int, payload: bytes) -> Entry:
    (size,) = _COUNTERS.unpack_from(payload, 0)
    at = _COUNTERS.size + size
    bots, excluded = msgspec.msgpack.decode(payload[_COUNTERS.size : at])
    table = pa.ipc.open_stream(payload[at:]).read_all() if at < len(payload) else None
    return Entry(
        seq,
        table,
        [(str(s), int(d), int(h)) for s, d, h in bots],
        [(str(s), int(d), str(r), int(h)) for s, d, r, h in excluded],
    )


class Journal:
    """One append-only file beside events.duckdb. Not thread-safe: EventStore calls it
    with its journal lock held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.pending: list[Entry] = []
        self.next_seq = 1

    def recover(self, applied: int) -> list[Entry]:
        """The entries above `applied`, read from the file (once, on open); the file is cut
        after the last whole entry."""
        data = self.path.read_bytes()
        at, entries = 0, []
        last = applied
        while at + _HEADER.size <= len(data):
            seq, length, crc = _HEADER.unpack_from(data, at)
            payload = data[at + _HEADER.size : at + _HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break  # torn: never acknowledged
            at += _HEADER.size + length
            last = max(last, seq)
            if seq > applied:
                entries.append(_decode(seq, payload))
        if at < len(data):
            os.truncate(self.path, at)
        self.next_seq = last + 1
        self.pending = entries
        return entries

    def append(self, table: pa.Table | None, bots: BotHits, excluded: ExcludedHits) -> None:
        """Write one entry and fdatasync it: once this returns, the batch survives a crash."""
        payload = _encode(table, bots, excluded)
        seq = self.next_seq
        os.write(self._fd, _HEADER.pack(seq, len(payload), zlib.crc32(payload)) + payload)
        os.fdatasync(self._fd)
        self.next_seq = seq + 1
        self.pending.append(Entry(seq, table, bots, excluded))

    def applied(self, count: int) -> None:
        """The first `count` pending entries are committed in DuckDB (with the last one's
        seq): forget them, and empty the file once nothing is pending (entries appended
        meanwhile stay; recovery skips the applied ones by their seq)."""
        del self.pending[:count]
        if not self.pending:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        os.close(self._fd)
