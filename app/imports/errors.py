"""Errors of an import: bad input names its file, line and column."""

from __future__ import annotations

from app.errors import InvalidRequest


class ImportInvalid(InvalidRequest):
    """The input can't be imported; nothing was written."""

    def __init__(self, file: str, line: int | None, column: str | None, problem: str) -> None:
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.column = column
