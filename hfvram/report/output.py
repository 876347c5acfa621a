"""Where a report goes: stdout or a file, never half-written (`hfvram MODEL` and `hfvram scan` write through it)."""

from __future__ import annotations

import os
import sys

from ..errors import UsageError


class Output:
    """stdout, FILE (rows streamed into it as they come), or, when FILE is also the --resume file, a temporary file
    beside it that replaces FILE atomically (`os.replace`) once every row is written: FILE is never half-written
    and never holds a model twice. `commit()` at the end; `abort()` when the scan failed before accounting for
    every model (FILE then stays as it was)."""

    def __init__(self, path: str | None, rewrite: bool = False):
        self.path = path
        self.tmp: str | None = None
        if not path:
            self.stream = sys.stdout
            return
        try:
            if rewrite:
                import tempfile

                directory = os.path.dirname(os.path.abspath(path))
                fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
                self.stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
            else:
                self.stream = open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None

    def commit(self) -> None:
        if not self.path:
            return
        self.stream.close()
        if self.tmp:
            if os.path.exists(self.path):  # keep the file's permissions
                os.chmod(self.tmp, os.stat(self.path).st_mode & 0o7777)
            os.replace(self.tmp, self.path)
            self.tmp = None

    def abort(self) -> None:
        if not self.path:
            return
        self.stream.close()
        if self.tmp:
            os.unlink(self.tmp)
            self.tmp = None
