"""EXL2 / EXL3 repos: one bit-rate per branch or per folder.

ExLlamaV2's converter writes one model per output folder (`convert.py -cf`), and the repos that publish several
bit-rates keep each in its own branch (`turboderp/Llama-3.1-8B-Instruct-exl2@4.0bpw`; `main` then holds only the
card and `measurement.json`) or its own folder. A branch is a revision, read like any other; a folder is chosen with
`org/name:FOLDER` and read as if it were the repo root. Without either, a repo whose `main` has no model lists its
branches (`list_repo_refs`, through huggingface_hub) so one can be chosen; `hfvram.analysis.list_quants` sizes each.

What an EXL2 / EXL3 checkpoint holds is read like any safetensors checkpoint (hfvram.introspect): config.json's
`quantization_config` (quant_method exl2/exl3, bits, head_bits) and the tensors' exact bytes.
"""

from __future__ import annotations

import re

from ..errors import NothingToRead, UsageError
from ..lazyre import lazy
from ..record import record
from ..repodata import TEXT_FILES, RepoData
from .select import headers_to_read, weight_kind

_BPW = lazy(r"(\d+(?:\.\d+)?)\s*bpw", re.IGNORECASE)


@record(frozen=True)
class Branch:
    """A branch of a repo (an EXL2 bit-rate) and its commit."""

    name: str
    sha: str

    @property
    def bpw(self) -> float | None:
        m = _BPW.search(self.name)
        return float(m.group(1)) if m else None


class ChooseVariant(UsageError):
    """A repo whose `main` holds no model and whose branches do (EXL2 bit-rates): one must be chosen."""

    kind = "choose-variant"

    def __init__(self, repo_id: str, branches: list[Branch]):
        self.repo_id = repo_id
        self.branches = branches
        names = ", ".join(b.name for b in branches[:16]) + (" ..." if len(branches) > 16 else "")
        super().__init__(f"{repo_id} keeps its model in branches ({names}): choose one with "
                         f"{repo_id}@{branches[0].name} (`hfvram {repo_id}` lists them with their fit)")


def list_branches(hub, repo_id: str) -> list[Branch]:
    """The repo's branches other than main, bit-rates first in ascending order (Hub `list_repo_refs`)."""
    from .hub import _Unreachable

    try:
        from .hub import current_budget

        refs = hub._retrying(current_budget(), f"listing the branches of {repo_id}",
                             lambda: hub.api.list_repo_refs(repo_id))
    except _Unreachable as exc:
        from ..errors import NetworkError

        raise NetworkError(f"cannot reach {hub.endpoint_url} to list the branches of {repo_id} ({exc})") from None
    branches = [Branch(b.name, b.target_commit) for b in refs.branches if b.name != "main"]
    return sorted(branches, key=lambda b: (b.bpw is None, b.bpw or 0.0, b.name))


def open_variant(hub, ref, *, offline: bool = False, file: str | None = None) -> RepoData:
    """The RepoData `ref` names: `@branch`, `:folder` or `:branch` of an EXL2 repo, else the repo itself."""
    selector = ref.selector
    try:
        repo = hub.fetch(ref.name, ref.revision, offline=offline)
    except NothingToRead:
        if ref.revision or offline:
            raise
        branches = list_branches(hub, ref.name)
        if selector:
            hit = next((b for b in branches if b.name.lower() == selector.lower()), None)
            if hit is not None:
                return hub.fetch(ref.name, hit.name, offline=offline)
        if branches:
            raise ChooseVariant(ref.name, branches) from None
        raise
    has_gguf = any(f.lower().endswith(".gguf") for f in repo.files)
    folder = (selector or file or "").strip("/")
    if folder and not has_gguf:
        if any(f.startswith(folder + "/") for f in repo.files):
            return read_subfolder(hub, repo, folder)
        if selector:
            branches = list_branches(hub, ref.name) if not offline else []
            hit = next((b for b in branches if b.name.lower() == selector.lower()), None)
            if hit is not None and not ref.revision:
                return hub.fetch(ref.name, hit.name, offline=offline)
            raise UsageError(f"{ref.name} has no GGUF quant, folder or branch {selector!r}"
                             + (f" (branches: {', '.join(b.name for b in branches)})" if branches else ""))
    if not ref.revision and not selector and not has_gguf and weight_kind(repo.files) == "none" \
            and _quantized_elsewhere(repo) and not offline:
        branches = list_branches(hub, ref.name)
        if branches:
            raise ChooseVariant(ref.name, branches)
    return repo


def _quantized_elsewhere(repo: RepoData) -> bool:
    """main has a config but no weights: an EXL2/EXL3 repo whose bit-rates live in branches."""
    text = repo.texts.get("config.json") or ""
    return '"exl2"' in text or '"exl3"' in text or "config.json" not in repo.texts


def read_subfolder(hub, repo: RepoData, folder: str) -> RepoData:
    """The model in `folder` of a Hub repo, read as if the folder were the repo root (its config.json and
    safetensors headers, in parallel)."""
    prefix = folder + "/"
    from .hub import offline_env

    if repo.source == "snapshot" or offline_env() or any("answering" in n for n in repo.notes):
        from ..errors import NotAvailableOffline

        raise NotAvailableOffline(f"{repo.id}: the model in folder {folder} is not in the metadata cache or the "
                                  f"bundled snapshot, and the Hub is not being asked (offline)")
    files = {p[len(prefix):]: s for p, s in repo.files.items() if p.startswith(prefix)}
    sub = RepoData(id=repo.id, sha=repo.sha, source=repo.source if repo.source != "cache" else "hub",
                   revision=repo.revision, files=files, notes=list(repo.notes), subfolder=folder)
    jobs = [("text", f) for f in TEXT_FILES if f in files] + [("header", f) for f in headers_to_read(files)]
    if not jobs:
        raise NothingToRead(f"{repo.id}: folder {folder} has no config.json or safetensors weights")

    from .hub import current_budget

    total = [0, 0]  # header bytes read for this folder (HubSource caps a repo's headers), the longest header

    def run(job):
        kind, path = job
        full = prefix + path
        budget = current_budget()
        size = files.get(path)
        if kind == "text":
            return kind, path, hub._retrying(budget, f"reading {repo.id}/{full}",
                                             lambda: hub._get_text(repo.id, repo.sha, full, size, budget))
        meta, tensors, _ = hub._retrying(budget, f"reading the header of {repo.id}/{full}",
                                      lambda: hub._get_header(repo.id, repo.sha, full, size, budget, total))
        return kind, path, (meta, [t.__class__(t.name, t.dtype, t.shape, t.nbytes, path) for t in tensors])

    for kind, path, value in hub.pool.map(run, jobs):
        if kind == "text":
            sub.texts[path] = value
        else:
            sub.safetensors[path] = value
    return sub
