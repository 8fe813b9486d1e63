"""The handover journal: which deliveries this process handed to a provider, written just before.

PostgreSQL cannot be written in the instant between "the provider has the whole message" and
"the provider answered": an SMTP server accepts a message when it reads the final `.` of DATA,
and a process killed right after that never learns it. So, right before writing the bytes that
complete a message (the last write, no await in between), its delivery id is appended to this
file with one `write(2)`. The page cache keeps it when the process is killed -9. On recovery:
a claimed delivery in the journal was handed over (the provider has it: never send again); one
not in the journal never completed (the server dropped the unfinished transaction: safe to send).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from uuid import UUID

RECORD = 16  # one delivery id: 16 bytes


class HandoverJournal:
    """Append-only file of delivery ids, one file per running process (instance)."""

    def __init__(self, directory: Path, instance: UUID) -> None:
        self.directory = directory
        self.instance = instance
        self._fd: int | None = None

    @staticmethod
    def path_for(directory: Path, instance: UUID) -> Path:
        """Where an instance's journal lives."""
        return directory / f"{instance}.handover"

    def open(self) -> None:
        """Create the directory and this instance's file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(
            self.path_for(self.directory, self.instance), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )

    def close(self) -> None:
        """Close the file (it stays until this instance's claims are all recorded)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, delivery_id: UUID) -> None:
        """Note a handover; synchronous on purpose (one small O_APPEND write is atomic)."""
        if self._fd is None:
            raise RuntimeError("the handover journal is not open")
        os.write(self._fd, delivery_id.bytes)

    def truncate_if_idle(self) -> None:
        """Empty this instance's file when no claim of it is open (the caller knows)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    @classmethod
    def read(cls, directory: Path, instance: UUID) -> set[UUID] | None:
        """The ids an instance handed over; None when it left no journal here."""
        try:
            data = cls.path_for(directory, instance).read_bytes()
        except FileNotFoundError:
            return None
        usable = len(data) - len(data) % RECORD
        return {UUID(bytes=data[i : i + RECORD]) for i in range(0, usable, RECORD)}

    @classmethod
    def remove(cls, directory: Path, instance: UUID) -> None:
        """Delete a dead instance's journal once its claims are resolved."""
        with contextlib.suppress(FileNotFoundError):
            cls.path_for(directory, instance).unlink()
