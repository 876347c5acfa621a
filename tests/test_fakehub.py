"""The fake Hub against the real huggingface_hub client (2.4.0): protocol, errors, instrumentation, faults."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    SafetensorsParsingError,
)

from hfvram import stformat
from hfvram.fakehub import FakeHub, RequestRecord, critical_path_length, git_blob_sha1, write_fixture
from hfvram.repodata import load_fixture

TINY_SHA = "a" * 40
TINY_OLD_SHA = "b" * 40
SHARDED_SHA = "c" * 40
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}
TINY_TENSORS = [
    ("model.embed_tokens.weight", "BF16", [128, 64]),
    ("model.layers.0.mlp.down_proj.weight", "BF16", [64, 256]),
    ("model.norm.weight", "F32", [64]),
]
# Long tensor names so the first shard's header is well over the 100,000 bytes of the client's first Range request.
BIG_SHARD = [(f"model.layers.{i // 8}.block_sparse_moe.experts.{i}.some_rather_long_projection.weight", "BF16", [4, 4])
             for i in range(1600)]
SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"


@pytest.fixture(scope="module")
def fixtures_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    write_fixture(root / "org--tiny-llama", "org/tiny-llama", sha=TINY_SHA, files={"config.json": CONFIG},
                  tensors={"model.safetensors": TINY_TENSORS}, refs={"v1.0": TINY_OLD_SHA}, downloads=100)
    index = {"metadata": {"total_size": 4242},
             "weight_map": {**{n: SHARD1 for n, _, _ in BIG_SHARD}, "lm_head.weight": SHARD2}}
    write_fixture(root / "org--sharded", "org/sharded", sha=SHARDED_SHA,
                  files={"config.json": CONFIG, "model.safetensors.index.json": index},
                  tensors={SHARD1: BIG_SHARD, SHARD2: [("lm_head.weight", "BF16", [128, 64])]}, downloads=50)
    write_fixture(root / "org--gated", "org/gated", files={"config.json": CONFIG},
                  tensors={"model.safetensors": TINY_TENSORS}, gated="manual", downloads=10)
    write_fixture(root / "org--private", "org/private", files={"config.json": CONFIG},
                  tensors={"model.safetensors": TINY_TENSORS}, private=True)
    write_fixture(root / "mistralai--pth-only", "mistralai/pth-only",
                  files={"params.json": {"dim": 64, "n_layers": 2}},
                  large_files={"consolidated.00.pth": 5_000_000_000}, downloads=1000)
    return root


@pytest.fixture
def hub(fake_hub_factory, fixtures_root) -> FakeHub:
    return fake_hub_factory(fixtures_root, tokens={"hf_good"})


def anon(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=False)


# ---------------------------------------------------------------------------------------------------------------
# model_info
# ---------------------------------------------------------------------------------------------------------------


def test_model_info_files_metadata(hub, fixtures_root):
    repo, _ = load_fixture(fixtures_root / "org--tiny-llama")
    info = anon(hub).model_info("org/tiny-llama", files_metadata=True)
    assert info.id == "org/tiny-llama" and info.sha == TINY_SHA and info.author == "org"
    assert info.gated is False and info.private is False and info.downloads == 100
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == repo.files
    st = {s.rfilename: s for s in info.siblings}["model.safetensors"]
    assert st.lfs is not None and st.lfs.size == repo.safetensors_size("model.safetensors")
    assert len(st.lfs.sha256) == 64 and st.lfs.pointer_size > 0
    cfg = {s.rfilename: s for s in info.siblings}["config.json"]
    assert cfg.lfs is None
    assert cfg.blob_id == git_blob_sha1((fixtures_root / "org--tiny-llama" / "config.json").read_bytes())
    assert info.safetensors.parameters == {"BF16": 128 * 64 + 64 * 256, "F32": 64}
    assert info.safetensors.total == 128 * 64 + 64 * 256 + 64
    assert info.config == {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (rec,) = hub.requests()
    assert (rec.method, rec.path, rec.query) == ("GET", "/api/models/org/tiny-llama", {"blobs": ["true"]})


def test_model_info_expand_returns_only_requested_keys(hub):
    info = anon(hub).model_info("org/sharded", expand=["safetensors", "config", "sha", "gated"])
    assert info.sha == SHARDED_SHA and info.gated is False
    assert info.safetensors.total == 1600 * 16 + 128 * 64
    assert info.siblings is None and info.downloads is None
    (rec,) = hub.requests()
    assert rec.query["expand"] == ["safetensors", "config", "sha", "gated"]  # repeated keys
    # `expand[]` (the other spelling) works too
    body = httpx2.get(f"{hub.url}/api/models/org/sharded?expand[]=sha&expand[]=downloads").json()
    assert body == {"_id": body["_id"], "id": "org/sharded", "sha": SHARDED_SHA, "downloads": 50}


def test_model_info_revisions(hub):
    api = anon(hub)
    assert api.model_info("org/tiny-llama", revision="v1.0").sha == TINY_OLD_SHA
    assert api.model_info("org/tiny-llama", revision=TINY_OLD_SHA).sha == TINY_OLD_SHA
    assert api.model_info("org/tiny-llama", revision=TINY_SHA).sha == TINY_SHA
    assert api.model_info("org/tiny-llama", revision="main").sha == TINY_SHA
    assert hub.requests()[0].path == "/api/models/org/tiny-llama/revision/v1.0"
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/tiny-llama", revision="nope")


def test_repo_files_and_tree(hub):
    files = anon(hub).list_repo_files("org/sharded")
    assert files == ["config.json", SHARD1, SHARD2, "model.safetensors.index.json"]
    tree = {e.path: e for e in anon(hub).list_repo_tree("mistralai/pth-only")}
    assert tree["consolidated.00.pth"].size == 5_000_000_000 and tree["consolidated.00.pth"].lfs is not None


# ---------------------------------------------------------------------------------------------------------------
# safetensors headers
# ---------------------------------------------------------------------------------------------------------------


def test_get_safetensors_metadata_single_file(hub):
    meta = anon(hub).get_safetensors_metadata("org/tiny-llama")
    assert not meta.sharded
    tensors = meta.files_metadata["model.safetensors"].tensors
    assert [(n, t.dtype, t.shape) for n, t in tensors.items()] == [(n, d, s) for n, d, s in TINY_TENSORS]
    assert meta.parameter_count == {"BF16": 128 * 64 + 64 * 256, "F32": 64}
    assert meta.files_metadata["model.safetensors"].metadata == {"format": "pt"}
    log = [(r.method, r.path, r.range, r.status) for r in hub.requests()]
    assert log == [
        ("HEAD", "/org/tiny-llama/resolve/main/model.safetensors", None, 200),
        ("GET", "/org/tiny-llama/resolve/main/model.safetensors", "bytes=0-100000", 206),
    ]


def test_get_safetensors_metadata_sharded_with_big_header(hub, fixtures_root):
    repo, _ = load_fixture(fixtures_root / "org--sharded")
    header_len = len(repo.header_bytes(SHARD1)) - 8
    assert header_len > 100_000
    meta = anon(hub).get_safetensors_metadata("org/sharded")
    assert meta.sharded and meta.metadata == {"total_size": 4242}
    assert len(meta.files_metadata[SHARD1].tensors) == 1600
    assert meta.parameter_count == {"BF16": 1600 * 16 + 128 * 64}
    assert meta.weight_map["lm_head.weight"] == SHARD2
    shard1 = [r.range for r in hub.requests("GET", SHARD1)]
    assert shard1 == ["bytes=0-100000", f"bytes=8-{header_len + 7}"]  # two Range requests
    assert [r.range for r in hub.requests("GET", SHARD2)] == ["bytes=0-100000"]
    assert [r.status for r in hub.requests("HEAD", r"/model\.safetensors$")] == [404]
    # index: 2 HEADs (file_exists + hf_hub_download) and one full GET
    assert hub.count("HEAD", "index.json") == 2 and hub.count("GET", "index.json") == 1


def test_parse_safetensors_file_metadata_by_tag_and_sha(hub):
    api = anon(hub)
    by_tag = api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors", revision="v1.0")
    by_sha = api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors", revision=TINY_OLD_SHA)
    assert by_tag.tensors == by_sha.tensors and len(by_tag.tensors) == 3
    assert [r.path for r in hub.requests()] == [
        "/org/tiny-llama/resolve/v1.0/model.safetensors",
        f"/org/tiny-llama/resolve/{TINY_OLD_SHA}/model.safetensors",
    ]


def test_sharded_safetensors_metadata_endpoint(hub):
    meta = anon(hub).get_sharded_safetensors_metadata("org/sharded")
    assert meta.metadata == {"total_size": 4242}
    assert meta.parameter_count == {"BF16": 1600 * 16 + 128 * 64}
    assert hub.count() == 1
    # every shard's header as the shard itself holds it
    assert meta.files_metadata == anon(hub).get_safetensors_metadata("org/sharded").files_metadata


# ---------------------------------------------------------------------------------------------------------------
# hf_hub_download and the cache
# ---------------------------------------------------------------------------------------------------------------


def test_hf_hub_download_then_head_only(hub, fixtures_root, hf_isolated):
    # module-level hf_hub_download: the fixture pointed huggingface_hub.constants at the hub
    path = hf_hub_download("org/tiny-llama", "config.json")
    assert Path(path).read_bytes() == (fixtures_root / "org--tiny-llama" / "config.json").read_bytes()
    assert str(hf_isolated) in path and TINY_SHA in path
    assert [(r.method, r.path) for r in hub.requests()] == [
        ("HEAD", "/org/tiny-llama/resolve/main/config.json"),
        ("GET", "/org/tiny-llama/resolve/main/config.json"),
    ]
    hub.reset()
    assert hf_hub_download("org/tiny-llama", "config.json") == path
    assert [(r.method, r.path) for r in hub.requests()] == [("HEAD", "/org/tiny-llama/resolve/main/config.json")]


def test_hf_hub_download_by_tag_and_sha(hub, hf_isolated):
    api = anon(hub)
    by_tag = api.hf_hub_download("org/tiny-llama", "config.json", revision="v1.0")
    assert f"snapshots/{TINY_OLD_SHA}/config.json" in by_tag
    hub.reset()
    by_sha = api.hf_hub_download("org/tiny-llama", "config.json", revision=TINY_OLD_SHA)
    assert by_sha == by_tag and hub.count() == 0  # a commit hash already in the cache needs no request at all


def test_hf_hub_download_safetensors_virtual_body(hub, fixtures_root):
    repo, _ = load_fixture(fixtures_root / "org--tiny-llama")
    path = anon(hub).hf_hub_download("org/tiny-llama", "model.safetensors")
    data = Path(path).read_bytes()
    header = repo.header_bytes("model.safetensors")
    assert len(data) == repo.safetensors_size("model.safetensors")
    assert data[: len(header)] == header and not any(data[len(header) :])


# ---------------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------------


def _code(exc_info) -> tuple[int, str | None]:
    r = exc_info.value.response
    return r.status_code, r.headers.get("X-Error-Code")


def test_missing_repo(hub):
    with pytest.raises(RepositoryNotFoundError) as e:
        anon(hub).model_info("org/nope")
    assert _code(e) == (401, "RepoNotFound")
    with pytest.raises(RepositoryNotFoundError) as e:
        HfApi(endpoint=hub.url, token="hf_whatever").model_info("org/nope")
    assert _code(e) == (404, "RepoNotFound")
    with pytest.raises(RepositoryNotFoundError) as e:
        anon(hub).parse_safetensors_file_metadata("org/nope", "model.safetensors")
    assert _code(e) == (401, "RepoNotFound")
    with pytest.raises(RepositoryNotFoundError):
        anon(hub).hf_hub_download("org/nope", "config.json")
    assert e.value.response.headers.get("X-Error-Message") == "Repository not found"
    assert json.loads(e.value.response.content) == {"error": "Repository not found"}


def test_gated_repo(hub):
    info = anon(hub).model_info("org/gated")  # metadata is public
    assert info.gated == "manual"
    with pytest.raises(GatedRepoError) as e:
        anon(hub).hf_hub_download("org/gated", "config.json")
    assert _code(e) == (401, "GatedRepo")
    assert "You must have access to it and be authenticated" in e.value.response.headers["X-Error-Message"]
    with pytest.raises(GatedRepoError) as e:
        HfApi(endpoint=hub.url, token="hf_not_approved").get_safetensors_metadata("org/gated")
    assert _code(e) == (403, "GatedRepo")
    assert "not in the authorized list" in e.value.response.headers["X-Error-Message"]
    with pytest.raises(GatedRepoError):
        anon(hub).get_safetensors_metadata("org/gated")
    ok = HfApi(endpoint=hub.url, token="hf_good").get_safetensors_metadata("org/gated")
    assert len(ok.files_metadata["model.safetensors"].tensors) == 3
    assert hub.requests()[-1].auth is True


def test_gated_approval_per_repo(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root, tokens={"hf_some": ["org/other-*"], "hf_org": ["org/*"]})
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=hub.url, token="hf_some").parse_safetensors_file_metadata("org/gated", "model.safetensors")
    HfApi(endpoint=hub.url, token="hf_org").parse_safetensors_file_metadata("org/gated", "model.safetensors")


def test_private_repo(hub):
    with pytest.raises(RepositoryNotFoundError) as e:
        anon(hub).model_info("org/private")
    assert _code(e) == (401, "RepoNotFound")
    with pytest.raises(RepositoryNotFoundError) as e:
        HfApi(endpoint=hub.url, token="hf_nope").hf_hub_download("org/private", "config.json")
    assert _code(e) == (404, "RepoNotFound")
    assert HfApi(endpoint=hub.url, token="hf_good").model_info("org/private").private is True


def test_revision_and_entry_not_found(hub):
    api = anon(hub)
    with pytest.raises(RevisionNotFoundError) as e:
        api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors", revision="v9")
    assert _code(e) == (404, "RevisionNotFound")
    with pytest.raises(RevisionNotFoundError):
        api.hf_hub_download("org/tiny-llama", "config.json", revision="d" * 40)
    with pytest.raises(RemoteEntryNotFoundError) as e:
        api.hf_hub_download("org/tiny-llama", "params.json")
    assert _code(e) == (404, "EntryNotFound")
    assert e.value.response.headers["X-Repo-Commit"] == TINY_SHA
    with pytest.raises(RemoteEntryNotFoundError):
        api.parse_safetensors_file_metadata("org/tiny-llama", "model-00001-of-00002.safetensors")
    assert api.file_exists("org/tiny-llama", "config.json") and not api.file_exists("org/tiny-llama", "x.json")


def test_reject_unknown_tokens(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root, tokens={"hf_good"}, reject_unknown_tokens=True)
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=hub.url, token="hf_bad").model_info("org/tiny-llama")
    assert e.value.response.status_code == 401
    assert e.value.response.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    assert HfApi(endpoint=hub.url, token="hf_good").model_info("org/tiny-llama").sha == TINY_SHA


# ---------------------------------------------------------------------------------------------------------------
# list_models
# ---------------------------------------------------------------------------------------------------------------


def test_list_models(hub):
    api = anon(hub)
    ids = [m.id for m in api.list_models(sort="downloads")]
    assert ids == ["mistralai/pth-only", "org/tiny-llama", "org/sharded", "org/gated"]  # private left out
    assert [m.downloads for m in api.list_models(sort="downloads")] == [1000, 100, 50, 10]
    assert [m.id for m in api.list_models(search="TINY")] == ["org/tiny-llama"]
    assert [m.id for m in api.list_models(author="org", sort="downloads", limit=2)] == ["org/tiny-llama", "org/sharded"]
    assert hub.requests()[-1].query["limit"] == ["2"]
    assert [m.id for m in api.list_models(search="nothing-like-this")] == []
    authed = HfApi(endpoint=hub.url, token="hf_good")
    assert "org/private" in [m.id for m in authed.list_models(author="org")]
    m = next(iter(api.list_models(search="tiny-llama", expand=["sha", "safetensors"])))
    assert m.sha == TINY_SHA and m.safetensors.total == 128 * 64 + 64 * 256 + 64


def test_list_models_pagination(hub):
    hub.list_page_size = 2
    hub.reset()
    ids = [m.id for m in anon(hub).list_models()]
    assert len(ids) == 4 and hub.count() == 2  # followed the Link header


# ---------------------------------------------------------------------------------------------------------------
# Range semantics and headers (plain HTTP)
# ---------------------------------------------------------------------------------------------------------------


def test_range_requests_and_headers(hub, fixtures_root):
    repo, _ = load_fixture(fixtures_root / "org--tiny-llama")
    size = repo.safetensors_size("model.safetensors")
    header = repo.header_bytes("model.safetensors")
    url = f"{hub.url}/org/tiny-llama/resolve/main/model.safetensors"
    with httpx2.Client() as c:
        r = c.get(url, headers={"Range": "bytes=0-7"})
        assert r.status_code == 206 and r.headers["Content-Range"] == f"bytes 0-7/{size}"
        assert r.content == header[:8] and r.headers["Content-Length"] == "8"
        assert r.headers["X-Repo-Commit"] == TINY_SHA and r.headers["Accept-Ranges"] == "bytes"
        assert r.headers["X-Linked-Size"] == str(size) and r.headers["X-Linked-Etag"] == r.headers["ETag"]
        assert not any(k.lower().startswith("x-xet") for k in r.headers)
        (n,) = struct.unpack("<Q", r.content)
        r = c.get(url, headers={"range": f"bytes=8-{n + 7}"})
        assert stformat.parse_header(r.content)[0][0].name == TINY_TENSORS[0][0]
        r = c.get(url, headers={"Range": f"bytes={size - 10}-"})
        assert r.status_code == 206 and r.content == bytes(10)
        r = c.get(url, headers={"Range": "bytes=-5"})
        assert r.headers["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}" and r.content == bytes(5)
        r = c.get(url, headers={"Range": f"bytes=0-{size + 100}"})
        assert r.status_code == 206 and len(r.content) == size
        r = c.get(url, headers={"Range": f"bytes={size}-"})
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{size}"
        r = c.head(url)
        assert r.status_code == 200 and r.headers["Content-Length"] == str(size) and r.content == b""
        r = c.get(url)
        assert r.status_code == 200 and r.content == header + bytes(size - len(header))
        # config.json: a regular (non-LFS) file, ETag = git blob sha1
        r = c.head(f"{hub.url}/org/tiny-llama/resolve/main/config.json")
        cfg = (fixtures_root / "org--tiny-llama" / "config.json").read_bytes()
        assert r.headers["ETag"] == f'"{git_blob_sha1(cfg)}"' and "X-Linked-Size" not in r.headers
        # a large file known only by its size is zeros
        pth = f"{hub.url}/mistralai/pth-only/resolve/main/consolidated.00.pth"
        r = c.head(pth)
        assert r.headers["Content-Length"] == "5000000000" and r.headers["X-Linked-Size"] == "5000000000"
        r = c.get(pth, headers={"Range": "bytes=4999999990-"})
        assert r.content == bytes(10)
        # every response has a Content-Length, errors included
        r = c.get(f"{hub.url}/org/nope/resolve/main/config.json")
        assert r.headers["Content-Length"] == str(len(r.content)) and r.json() == {"error": "Repository not found"}
        r = c.get(f"{hub.url}/api/agent-harnesses")
        assert r.json() == {"standardEnvVars": [], "harnesses": {}}


# ---------------------------------------------------------------------------------------------------------------
# malformed files
# ---------------------------------------------------------------------------------------------------------------


def test_malformed_files(hub):
    api = anon(hub)
    hub.set_file("org/tiny-llama", "model.safetensors", struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(SafetensorsParsingError, match="too big"):
        api.get_safetensors_metadata("org/tiny-llama")
    hub.set_file("org/tiny-llama", "model.safetensors", b"abc")
    with pytest.raises(SafetensorsParsingError, match="too small"):
        api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors")
    hub.set_file("org/tiny-llama", "config.json", "this is not json {")
    path = api.hf_hub_download("org/tiny-llama", "config.json")
    assert Path(path).read_text() == "this is not json {"
    hub.delete_file("org/tiny-llama", "model.safetensors")
    assert not api.file_exists("org/tiny-llama", "model.safetensors")
    hub.reset_files("org/tiny-llama")
    assert len(api.get_safetensors_metadata("org/tiny-llama").files_metadata["model.safetensors"].tensors) == 3


# ---------------------------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------------------------


def test_429_retry_after_is_observed(hub):
    hub.fail_next(1, 429, retry_after=0, path=r"^/api/models$")
    t0 = time.perf_counter()
    assert [m.id for m in anon(hub).list_models(search="tiny", limit=1)] == ["org/tiny-llama"]
    first, second = hub.requests()
    assert (first.status, first.fault, second.status) == (429, "429", 200)
    # Retry-After: 0 -> huggingface_hub's http_backoff sleeps Retry-After + 1 s before retrying
    assert second.start - first.end >= 0.9 and time.perf_counter() - t0 >= 0.9
    # model_info does not retry: the 429 and its Retry-After reach the caller
    hub.rate_limit_next(retry_after=7, path="/api/models/org/tiny-llama")
    with pytest.raises(HfHubHTTPError) as e:
        anon(hub).model_info("org/tiny-llama")
    assert e.value.response.status_code == 429 and e.value.response.headers["Retry-After"] == "7"


def test_5xx_and_dropped_connections(hub):
    api = anon(hub)
    hub.fail_next(2, 503, path="resolve")
    with pytest.raises(HfHubHTTPError) as e:
        api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors")
    assert e.value.response.status_code == 503
    with pytest.raises(HfHubHTTPError):
        api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors")
    assert len(api.parse_safetensors_file_metadata("org/tiny-llama", "model.safetensors").tensors) == 3
    hub.fail_next(1, 500, method="HEAD")
    r = httpx2.head(f"{hub.url}/org/tiny-llama/resolve/main/config.json")
    assert r.status_code == 500 and int(r.headers["Content-Length"]) > 0 and r.content == b""  # HEAD: no body
    hub.drop_next(1, path="config.json")
    with pytest.raises(httpx2.HTTPError):  # RemoteProtocolError: server disconnected without a response
        httpx2.get(f"{hub.url}/org/tiny-llama/resolve/main/config.json")
    assert httpx2.get(f"{hub.url}/org/tiny-llama/resolve/main/config.json").status_code == 200
    assert [r.fault for r in hub.requests("GET", "config.json")] == ["drop", None]


# ---------------------------------------------------------------------------------------------------------------
# instrumentation
# ---------------------------------------------------------------------------------------------------------------


def _rec(start, end):
    return RequestRecord("GET", "/x", "/x", {}, None, False, start=start, end=end, status=200)


def test_critical_path_definition():
    assert critical_path_length([]) == 0
    # 2 sequential, then 3 concurrent: 3 round trips
    recs = [_rec(0, 1), _rec(1, 2), _rec(2.1, 3), _rec(2.2, 3.1), _rec(2.3, 3.2)]
    assert critical_path_length(recs) == 3
    assert critical_path_length([_rec(0, 1)] * 5) == 1  # 5 concurrent
    assert critical_path_length([_rec(i, i + 1) for i in range(4)]) == 4  # end == start counts as "after"
    # a long request overlapping a chain of short ones does not extend it; the chain of short ones wins
    assert critical_path_length([_rec(0, 10), _rec(0, 1), _rec(1, 2), _rec(2, 3)]) == 3
    # ... and a request after both continues the longer chain
    assert critical_path_length([_rec(0, 10), _rec(0, 1), _rec(1, 2), _rec(2, 3), _rec(10, 11)]) == 4
    assert critical_path_length([_rec(0, 1), _rec(1, None)]) == 1  # in flight: ignored


def test_count_and_sequential_round_trips(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root, delay_s=0.1)
    url = f"{hub.url}/org/tiny-llama/resolve/main/config.json"
    with httpx2.Client() as c:
        c.head(url)
        c.get(url)
    barrier = threading.Barrier(3)

    def parallel():
        with httpx2.Client() as c2:
            barrier.wait()
            c2.get(url, headers={"Range": "bytes=0-3"})

    threads = [threading.Thread(target=parallel) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hub.count() == 5 and hub.count("GET") == 4 and hub.count("GET", "config") == 4
    assert hub.sequential_round_trips() == 3
    assert hub.sequential_round_trips(method="GET") == 2
    assert all(r.end - r.start >= 0.1 for r in hub.requests())
    hub.reset()
    assert hub.count() == 0 and hub.sequential_round_trips() == 0


def test_sequential_round_trips_of_a_real_client_call(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root, delay_s=0.05)
    anon(hub).get_safetensors_metadata("org/sharded")
    # HEAD model.safetensors (404), HEAD index, HEAD+GET index, then both shards in parallel, shard 1 needing two
    # GETs: 6 round trips on the critical path out of 7 requests.
    assert hub.count() == 7
    assert hub.sequential_round_trips() == 6


def test_telemetry_is_left_out_by_default(hub):
    httpx2.get(f"{hub.url}/api/agent-harnesses")
    assert hub.count() == 0 and hub.count(include_telemetry=True) == 1 and len(hub.log) == 1


# ---------------------------------------------------------------------------------------------------------------
# aliases, lazy loading, CDN mode, CLI
# ---------------------------------------------------------------------------------------------------------------


def test_aliases(hub):
    t0 = time.perf_counter()
    for i in range(500):
        hub.add_alias(f"bench/model-{i:03d}", "org/sharded" if i % 2 else "org/tiny-llama")
    assert time.perf_counter() - t0 < 1.0
    api = anon(hub)
    info = api.model_info("bench/model-007", files_metadata=True)
    assert info.id == "bench/model-007" and info.sha == SHARDED_SHA
    assert len(api.get_safetensors_metadata("bench/model-010").files_metadata["model.safetensors"].tensors) == 3
    assert len([m for m in api.list_models(author="bench")]) == 500
    hub.add_alias("bench/gated-copy", "org/tiny-llama", gated="auto")
    with pytest.raises(GatedRepoError):
        api.parse_safetensors_file_metadata("bench/gated-copy", "model.safetensors")


def test_lazy_loading(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root)
    assert all(r.fixture._data is None for r in hub._repos.values())  # only repo.json read at start
    anon(hub).model_info("org/tiny-llama")
    assert hub._repos["org/tiny-llama"].fixture._data is not None
    assert hub._repos["org/sharded"].fixture._data is None


def test_cdn_mode(fake_hub_factory, fixtures_root):
    hub = fake_hub_factory(fixtures_root, tokens={"hf_good"}, cdn=True)
    api = HfApi(endpoint=hub.url, token="hf_good")
    meta = api.get_safetensors_metadata("org/gated")
    assert len(meta.files_metadata["model.safetensors"].tensors) == 3
    hub_get, cdn_get = [r for r in hub.requests("GET")]
    assert (hub_get.server, hub_get.status, hub_get.auth) == ("hub", 302, True)
    assert (cdn_get.server, cdn_get.status, cdn_get.auth, cdn_get.range) == ("cdn", 206, False, "bytes=0-100000")
    path = api.hf_hub_download("org/gated", "model.safetensors")
    assert os.path.getsize(path) == load_fixture(fixtures_root / "org--gated")[0].safetensors_size("model.safetensors")


def test_cli_prints_endpoint(fixtures_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hfvram.fakehub", "--fixtures", str(fixtures_root), "--port", "0", "--token", "hf_x",
         "--alias", "bench/a=org/tiny-llama"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("HF_ENDPOINT=http://127.0.0.1:")
        endpoint = line.split("=", 1)[1]
        info = HfApi(endpoint=endpoint, token=False).model_info("bench/a")
        assert info.sha == TINY_SHA
        out = subprocess.run(
            [sys.executable, "-c", "from huggingface_hub import get_safetensors_metadata as g; "
             "print(g('org/private', token='hf_x').parameter_count)"],
            env={**env, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path)}, capture_output=True, text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "'BF16': 24576" in out.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# the repo's own fixtures (skipped until fixtures/ has some)
# ---------------------------------------------------------------------------------------------------------------


def test_repo_fixtures_serve(fake_hub):
    api = HfApi(endpoint=fake_hub.url, token="hf_test")
    fake_hub.set_tokens({"hf_test"})
    assert not fake_hub.skipped
    for repo_id in fake_hub.repo_ids():
        data = fake_hub.repo_data(repo_id)
        info = api.model_info(repo_id, files_metadata=True)
        assert {s.rfilename: s.size for s in info.siblings} == data.files, repo_id
        if data.safetensors:
            path = sorted(data.safetensors)[0]
            meta = api.parse_safetensors_file_metadata(repo_id, path)
            assert len(meta.tensors) == len(data.safetensors[path][1]), (repo_id, path)
