"""Where model metadata comes from: the Hub (through huggingface_hub), our metadata cache, the bundled
snapshot, or a local folder. Each source returns a `RepoData`; `open_model` picks the source for a reference.

References: `org/name`, `org/name@revision`, a local folder, file or config.json, and the form Ollama and LM Studio
users copy, `hf.co/org/name:Q4_K_M` (also `org/name:Q4_K_M`): the part after `:` chooses one quant of a GGUF repo
(hfvram.sources.gguf), or one bit-rate of an EXL2 repo kept per folder or per branch (hfvram.sources.exl)."""

from __future__ import annotations

import os
import re

from ..errors import UsageError
from ..record import record
from ..repodata import RepoData

# Hub repo ids: "name" (legacy, e.g. gpt2) or "org/name"; letters, digits, "-", "_", "."; at most 96 chars
# (huggingface_hub utils/_validators.py REPO_ID_REGEX).
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$")
# `:TAG` after a repo id: a quant (Q4_K_M, IQ4_XS, bf16, UD-Q4_K_XL) or a bit-rate (4.0bpw)
_SELECTOR = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}$")


@record(frozen=True)
class ModelRef:
    """A parsed MODEL argument: a Hub id or a local path, with revision and selector."""

    kind: str  # "hub" | "local"
    name: str
    revision: str | None = None
    selector: str | None = None  # `:Q4_K_M`: one quant of a GGUF repo, one bit-rate folder/branch of an EXL2 repo

    def __str__(self) -> str:
        text = f"{self.name}@{self.revision}" if self.revision else self.name
        return f"{text}:{self.selector}" if self.selector else text


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
    for prefix in ("https://hf.co/", "http://hf.co/", "hf.co/", "huggingface.co/"):  # Ollama / LM Studio form
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    selector = None
    head, colon, tail = text.rpartition(":")
    if colon and "/" not in tail and _SELECTOR.match(tail):
        text, selector = head, tail
    name, _, revision = text.partition("@")
    if not _REPO_ID.match(name) or ".." in name or "--" in name.split("/")[0][:0]:
        raise UsageError(f"{text!r} is neither a local path nor a Hub repo id (org/name[@revision][:QUANT])")
    return ModelRef("hub", name, revision or None, selector)


def open_model(ref: ModelRef | str, *, offline: bool = False, token=None, hub=None, file: str | None = None,
               mmproj: str | None = None, choose: bool = True) -> RepoData:
    """The RepoData of one model. For a GGUF repo, `ref.selector` (`:Q4_K_M`) or `file` chooses the quant and
    `mmproj` ("auto" or a file name) adds the vision projector; their headers are read. `choose=False` returns the
    repo as listed, without choosing (hfvram.analysis.list_quants does the rest)."""
    if isinstance(ref, str):
        ref = parse_ref(ref)
    if ref.kind == "local":
        from .local import read_local

        repo = read_local(ref.name)
        hub = None
    else:
        if hub is None:
            from .hub import HubSource

            hub = HubSource(token=token)
        from .exl import open_variant

        repo = open_variant(hub, ref, offline=offline, file=file)
    if not choose:
        return repo
    if not (file or mmproj) and not any(f.lower().endswith(".gguf") for f in repo.files):
        return repo  # no GGUF file to choose: what `prepare` answers too, without importing the GGUF reader
    from .gguf import prepare

    return prepare(repo, hub, selector=ref.selector, file=file, mmproj=mmproj, offline=offline)
