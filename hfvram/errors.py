"""User-facing errors.

Every failure a user can cause (a bad repo id, a gated repo, a malformed file, no network) is raised as an
`HfvramError`. The CLI prints its message as one line on stderr and exits with `exit_code` (2); it never
shows a traceback for these. The message never contains a token.
"""

from __future__ import annotations


class HfvramError(Exception):
    """An error with a one-line message meant for the user."""

    exit_code = 2
    kind = "error"

    def __init__(self, message: str):
        # Keep it to one line whatever the underlying library said.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class RepoNotFound(HfvramError):
    kind = "repo-not-found"


class GatedRepo(HfvramError):
    kind = "gated"


class RevisionNotFound(HfvramError):
    kind = "revision-not-found"


class NothingToRead(HfvramError):
    kind = "nothing-to-read"


class MalformedInput(HfvramError):
    kind = "malformed"


class NetworkError(HfvramError):
    kind = "network"


class RateLimited(NetworkError):
    kind = "rate-limited"


class Timeout(NetworkError):
    """A run (or a scan row) passed its deadline, or a wait would have passed `--max-wait`."""

    kind = "timeout"


class NotAvailableOffline(HfvramError):
    kind = "offline"


class UsageError(HfvramError):
    kind = "usage"
