"""Where model metadata comes from: the Hub (through huggingface_hub), our metadata cache, the bundled
snapshot, or a local folder. Each source returns a `RepoData`; `open_model` picks the source for a reference."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..repodata import RepoData

# Hub repo ids: "name" (legacy, e.g. gpt2) or "org/name"; letters, digits, "-", "_", "."; at most 96 chars
# (huggingface_hub utils/_validators.py REPO_ID_REGEX).
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$")


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "hub" | "local"
    name: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name


def valid_repo_id(repo_id) -> bool:
    """A Hub repo id as the Hub spells them: also what the metadata cache names its folders after."""
    return isinstance(repo_id, str) and bool(_REPO_ID.fullmatch(repo_id)) and ".." not in repo_id


def parse_ref(text: str) -> ModelRef:
    text = text.strip()
    if not text:
        raise UsageError("empty model reference")
    if text.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(text)):
        return ModelRef("local", text)
    if text.startswith(("https://huggingface.co/", "hf://")):
        text = text.split("huggingface.co/", 1)[-1].split("hf://", 1)[-1]
        text = text.split("/tree/", 1)[0] if "/tree/" not in text else text.replace("/tree/", "@", 1)
    name, _, revision = text.partition("@")
    if not _REPO_ID.match(name) or ".." in name or "--" in name.split("/")[0][:0]:
        raise UsageError(f"{text!r} is neither a local path nor a Hub repo id (org/name[@revision])")
    return ModelRef("hub", name, revision or None)


def open_model(ref: ModelRef | str, *, offline: bool = False, token=None, hub=None) -> RepoData:
    if isinstance(ref, str):
        ref = parse_ref(ref)
    if ref.kind == "local":
        from .local import read_local

        return read_local(ref.name)
    if hub is None:
        from .hub import HubSource

        hub = HubSource(token=token)
    return hub.fetch(ref.name, ref.revision, offline=offline)
