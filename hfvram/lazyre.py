"""A regular expression compiled on first use. The tensor-name rules are compiled at import otherwise (~3 ms of every
run), and a warm or offline run, which reads the derived facts back, never uses them."""

from __future__ import annotations

import re


class lazy:  # noqa: N801 - read like re.compile at the call sites
    """Stands for `re.compile(pattern, flags)`: the first attribute asked for (`search`, `match`, ...) compiles it,
    and every attribute is then kept on the instance, so later look-ups cost what a compiled pattern's do."""

    def __init__(self, pattern: str, flags: int = 0):
        self._args = (pattern, flags)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(re.compile(*self._args), name)
        setattr(self, name, value)
        return value
