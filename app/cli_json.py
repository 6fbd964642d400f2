"""What every `--json` CLI command prints: one JSON value on stdout, nothing else."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def print_json(value: Any) -> None:
    sys.stdout.write(_encoder.encode(value).decode() + "\n")
