"""The studio's record: its uploads and renders in one small JSON file in its folder, written
durably (a temporary file, synced, renamed over the last), so that a restart lists them again:
finished, cancelled, failed, or stopped with the studio and resumable from their frames."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from videostyle.errors import ConfigError
from videostyle.io import durable

RECORD = "studio.json"
VERSION = 1


class Record:
    """Reads the record once, and writes it whole on each change (it is small: a line per
    upload and per render), one writer at a time."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RECORD
        self.lock = threading.Lock()

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """The record's uploads and jobs (empty lists for a new folder)."""
        if not self.path.exists():
            return {"uploads": [], "jobs": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a record this version writes")
            uploads, jobs = data.get("uploads", []), data.get("jobs", [])
            if not isinstance(uploads, list) or not isinstance(jobs, list):
                raise ValueError("its lists are not lists")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"studio folder {self.path.parent}: its record {RECORD} is not readable ({exc}); "
                              "move it away to start the studio afresh (uploads and outputs stay)") from None
        return {"uploads": [u for u in uploads if isinstance(u, dict)], "jobs": [j for j in jobs if isinstance(j, dict)]}

    def save(self, uploads: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> None:
        text = json.dumps({"version": VERSION, "uploads": uploads, "jobs": jobs}, indent=1)
        with self.lock:
            durable.write_text(self.path, text)
