"""Reading a model from a local folder (a downloaded snapshot, a training output) or a bare config.json."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MalformedInput, NothingToRead
from ..repodata import TEXT_FILES, RepoData
from ..stformat import Tensor, dtype_nbytes, header_length
from .select import headers_to_read


def read_local(path: str | os.PathLike) -> RepoData:
    target = Path(path).expanduser()
    if target.is_file() and target.name.lower().endswith(".gguf"):
        return _read_gguf_file(target)
    if target.is_file():
        if not target.name.endswith(".json"):
            raise NothingToRead(f"{target}: expected a model folder, a .gguf file or a config.json/params.json file")
        folder, only = target.parent, target.name
    elif target.is_dir():
        folder, only = target, None
    else:
        raise NothingToRead(f"{target}: no such file or folder")

    repo = RepoData(id=str(target), sha=None, source="local")
    if only is not None:
        # A bare config file: just that file (named as what it is).
        name = "params.json" if only == "params.json" else "config.json"
        repo.files[name] = target.stat().st_size
        repo.texts[name] = _read_text(target)
        repo.notes.append("config only: weights estimated from the architecture, not read from files")
        return repo

    for entry in sorted(folder.rglob("*")):
        if entry.is_file() and ".git" not in entry.parts and ".cache" not in entry.parts:
            repo.files[entry.relative_to(folder).as_posix()] = entry.stat().st_size
    for name in TEXT_FILES:
        if name in repo.files:
            repo.texts[name] = _read_text(folder / name)
    candidates = headers_to_read(repo.files)
    repo.local_root = str(folder)
    if not repo.texts and not candidates and not any(f.lower().endswith(".gguf") for f in repo.files):
        raise NothingToRead(f"{folder}: no config.json, params.json, *.safetensors or *.gguf to read")
    for name in candidates:
        repo.safetensors[name] = _read_header(folder / name, name)
    return repo


def _read_gguf_file(target: Path) -> RepoData:
    """A local .gguf file: the model is that file (with its sibling splits when it is one of
    `name-0000N-of-0000M.gguf`); its folder's other files are listed (mmproj projectors), not read."""
    from .gguf import choose, listing, read_local_header, selected

    folder = target.parent
    repo = RepoData(id=str(target), sha=None, source="local", local_root=str(folder))
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.name.lower().endswith(".gguf"):
            repo.files[entry.name] = entry.stat().st_size
    quant = choose(listing(repo.files), str(target), file=target.name)
    if quant.missing_parts:
        raise NothingToRead(f"{target}: split file without {', '.join(quant.missing_parts[:3])} next to it")
    for name in quant.files:
        repo.gguf[name] = read_local_header(str(folder / name))
    return selected(repo, quant)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise NothingToRead(f"{path}: {exc.strerror}") from None


def _read_header(path: Path, name: str):
    """Tensor table of a local safetensors file, read with the `safetensors` library (which validates the header:
    dtypes, shapes and contiguous offsets); our own length check first, so a huge or bogus header is refused
    before anything is parsed."""
    try:
        with open(path, "rb") as fh:
            n = header_length(fh.read(8), str(path))
        size = path.stat().st_size
    except OSError as exc:
        raise NothingToRead(f"{path}: {exc.strerror}") from None
    if 8 + n > size:
        raise MalformedInput(f"{path}: header claims {n:,} bytes but the file has {size:,}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            tensors = []
            for key in f.keys():
                sl = f.get_slice(key)
                dtype, shape = str(sl.get_dtype()), tuple(int(d) for d in sl.get_shape())
                tensors.append(Tensor(key, dtype, shape, dtype_nbytes(dtype, shape), name))
    except SafetensorError as exc:
        raise MalformedInput(f"{path}: not a valid safetensors file ({exc})") from None
    return metadata, tensors
