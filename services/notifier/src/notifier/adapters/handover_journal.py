"""The handover journal: which deliveries this process handed to a provider, and when it was about to.

PostgreSQL cannot be written in the instant between "the provider has the whole message" and
"the provider answered": an SMTP server accepts a message when it reads the final `.` of DATA,
and a process killed right after that never learns it. So the delivery id is appended to this
file with one `write(2)` around the write that completes a message (SMTP's final `.`, the
Twilio request's last byte): INTENT right before that write and HANDED right after it (no await
in between). The page cache keeps the file when the process is killed -9. On
recovery, per delivery, the last note counts: HANDED means the provider has it (never send
again); INTENT alone means the kill fell between the two notes, so whether the bytes left is
unknown (never send again, never call it sent); no note means it never completed (the server
dropped the unfinished transaction: safe to send).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from uuid import UUID

RECORD = 17  # a kind byte and a delivery id (16 bytes)
LEGACY_RECORD = 16  # journals of earlier versions: a delivery id, noted right before the final write
INTENT = b"I"  # about to write the bytes that complete the message
HANDED = b"H"  # those bytes were written


class HandoverJournal:
    """Append-only file of delivery ids, one file per running process (instance)."""

    def __init__(self, directory: Path, instance: UUID) -> None:
        self.directory = directory
        self.instance = instance
        self._fd: int | None = None

    @staticmethod
    def path_for(directory: Path, instance: UUID) -> Path:
        """Where an instance's journal lives."""
        return directory / f"{instance}.journal"

    @staticmethod
    def legacy_path_for(directory: Path, instance: UUID) -> Path:
        """Where an instance of an earlier version kept its journal."""
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

    def record(self, delivery_id: UUID, kind: bytes = HANDED) -> None:
        """Note a handover (or the intent); synchronous on purpose (one small O_APPEND write is atomic)."""
        if self._fd is None:
            raise RuntimeError("the handover journal is not open")
        os.write(self._fd, kind + delivery_id.bytes)

    def truncate_if_idle(self) -> None:
        """Empty this instance's file when no claim of it is open (the caller knows)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    @classmethod
    def read(cls, directory: Path, instance: UUID) -> dict[UUID, bytes] | None:
        """Each noted id's last note (HANDED or INTENT); None when the instance left no journal here."""
        try:
            data = cls.path_for(directory, instance).read_bytes()
        except FileNotFoundError:
            try:
                legacy = cls.legacy_path_for(directory, instance).read_bytes()
            except FileNotFoundError:
                return None
            usable = len(legacy) - len(legacy) % LEGACY_RECORD
            step = LEGACY_RECORD
            return {UUID(bytes=legacy[i : i + step]): HANDED for i in range(0, usable, step)}
        usable = len(data) - len(data) % RECORD
        notes: dict[UUID, bytes] = {}
        for i in range(0, usable, RECORD):
            notes[UUID(bytes=data[i + 1 : i + RECORD])] = data[i : i + 1]
        return notes

    @classmethod
    def remove(cls, directory: Path, instance: UUID) -> None:
        """Delete a dead instance's journal once its claims are resolved."""
        for path in (cls.path_for(directory, instance), cls.legacy_path_for(directory, instance)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
