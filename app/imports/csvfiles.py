"""Reading CSV exports row by row, with the file, line and column of any bad value."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from app.imports.errors import ImportInvalid

T = TypeVar("T")
csv.field_size_limit(1 << 20)


class CsvRow:
    """One row of a CSV file by column name; get() parses a value or says where it's bad."""

    __slots__ = ("_index", "file", "line", "values")

    def __init__(self, file: str, line: int, index: dict[str, int], values: list[str]) -> None:
        self.file, self.line, self._index, self.values = file, line, index, values

    def has(self, column: str) -> bool:
        return column in self._index

    def text(self, column: str) -> str | None:
        """The value, or None when empty or the column is absent."""
        i = self._index.get(column)
        if i is None or i >= len(self.values):
            return None
        value = self.values[i].strip()
        return value or None

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise self.invalid(column, "a value is required")
        return value

    def get(self, column: str, parse: Callable[[str], T]) -> T | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            return parse(value)
        except (ValueError, ArithmeticError) as exc:
            raise self.invalid(column, f"{value[:80]!r} is not valid ({exc})") from None

    def invalid(self, column: str | None, problem: str) -> ImportInvalid:
        return ImportInvalid(self.file, self.line, column, problem)


def parse_time_us(value: str) -> int:
    """An ISO-8601 / RFC 3339 time (a zone-less one is UTC) as UTC microseconds."""
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def read_csv(
    path: Path, name: str | None = None, required: tuple[str, ...] = ()
) -> tuple[list[str], Generator[CsvRow, None, None]]:
    """The header and the rows of one CSV file (utf-8, an optional BOM)."""
    label = name or path.name
    handle = path.open(newline="", encoding="utf-8-sig")
    return _rows(label, handle, required)


def read_csv_text(
    label: str, handle: io.TextIOBase, required: tuple[str, ...] = ()
) -> tuple[list[str], Generator[CsvRow, None, None]]:
    return _rows(label, handle, required)


def _rows(
    label: str, handle: io.TextIOBase | io.TextIOWrapper, required: tuple[str, ...]
) -> tuple[list[str], Generator[CsvRow, None, None]]:
    reader = csv.reader(handle)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        handle.close()
        raise ImportInvalid(label, 1, None, "the file is empty") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise ImportInvalid(label, 1, None, f"not a CSV file ({exc})") from None
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise ImportInvalid(
            label, 1, missing[0], f"the header lacks the columns {', '.join(missing)}"
        )
    index = {h: i for i, h in enumerate(header)}

    def rows() -> Generator[CsvRow, None, None]:
        try:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise ImportInvalid(label, reader.line_num + 1, None, str(exc)) from None
                if values:
                    yield CsvRow(label, reader.line_num, index, values)
        finally:
            handle.close()

    return header, rows()


def expand_zips(paths: list[Path], into: Path) -> list[Path]:
    """The files of the paths, a zip's members extracted into `into` (in name order)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file()))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in sorted(archive.namelist()):
                    base = Path(member).name
                    if member.endswith("/") or not base or base.startswith("."):
                        continue
                    target = into / f"{len(out):04d}-{base}"
                    with archive.open(member) as src, target.open("wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                    out.append(target)
        else:
            out.append(path)
    return out


def display_name(path: Path) -> str:
    """A file's name as errors show it (an extracted zip member without its prefix)."""
    name = path.name
    return name[5:] if len(name) > 5 and name[:4].isdigit() and name[4] == "-" else name
