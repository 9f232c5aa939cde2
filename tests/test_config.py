"""app/config.py: defaults, LLOCO_* env vars, TOML file, precedence, validation, help."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, default_home, field_help


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """platformdirs' default home (and its lloco.toml) under tmp, never the developer's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LLOCO_CONFIG", raising=False)


def _toml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults(tmp_path):
    s = Settings()
    assert s.home == tmp_path / "xdg" / "lloco"
    assert s.home == default_home()
    assert s.decoder == "smollm2-135m" and s.embedder == "minilm-l6" and s.compressor == "default"
    assert (s.chunk_tokens, s.chunk_overlap, s.summary_tokens, s.top_k) == (256, 32, 8, 4)
    assert s.max_new_tokens == 96 and s.max_context_tokens is None
    assert (s.compress_batch_size, s.embed_batch_size, s.max_file_mb) == (8, 32, 200.0)
    assert (s.device, s.dtype) == ("auto", "auto")
    assert s.database_url is None and s.model_cache is None and s.tokenizer is None and s.adapter is None


def test_derived_paths(tmp_path):
    s = Settings(home=tmp_path / "h")
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'lloco.db'}"
    assert s.resolved_model_cache == tmp_path / "h" / "models"
    assert s.collection_dir(7) == tmp_path / "h" / "collections" / "7"
    s2 = Settings(home=tmp_path / "h", database_url="postgresql+psycopg://u:p@db/lloco", model_cache=tmp_path / "m")
    assert s2.resolved_database_url == "postgresql+psycopg://u:p@db/lloco"
    assert s2.resolved_model_cache == tmp_path / "m"


def test_default_database_is_sqlite_under_default_home(tmp_path):
    s = Settings()
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'xdg' / 'lloco' / 'lloco.db'}"
    assert s.resolved_database_url.startswith("sqlite:///")


def test_home_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    s = Settings(home="~/data", model_cache="~/cache")
    assert s.home == tmp_path / "me" / "data"
    assert s.model_cache == tmp_path / "me" / "cache"


def test_env_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("LLOCO_TOP_K", "7")
    monkeypatch.setenv("LLOCO_CHUNK_TOKENS", "128")
    monkeypatch.setenv("LLOCO_CHUNK_OVERLAP", "0")
    monkeypatch.setenv("LLOCO_DEVICE", "cpu")
    monkeypatch.setenv("LLOCO_DTYPE", "float16")
    monkeypatch.setenv("LLOCO_MAX_FILE_MB", "0.5")
    monkeypatch.setenv("LLOCO_HOME", str(tmp_path / "envhome"))
    monkeypatch.setenv("LLOCO_DECODER", "/models/llama")
    s = Settings()
    assert s.top_k == 7 and isinstance(s.top_k, int)
    assert (s.chunk_tokens, s.chunk_overlap) == (128, 0)
    assert (s.device, s.dtype) == ("cpu", "float16")
    assert s.max_file_mb == 0.5
    assert s.home == tmp_path / "envhome"
    assert s.decoder == "/models/llama"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'envhome' / 'lloco.db'}"


def test_env_var_names_are_case_insensitive(monkeypatch):
    monkeypatch.setenv("lloco_top_k", "9")
    assert Settings().top_k == 9


def test_bad_env_value_raises(monkeypatch):
    monkeypatch.setenv("LLOCO_TOP_K", "many")
    with pytest.raises(ValidationError, match="top_k"):
        Settings()


def test_toml_flat_via_lloco_config(monkeypatch, tmp_path):
    cfg = _toml(tmp_path / "conf.toml", 'top_k = 11\nembedder = "my-embedder"\nchunk_tokens = 64\nchunk_overlap = 4\n')
    monkeypatch.setenv("LLOCO_CONFIG", str(cfg))
    s = Settings()
    assert (s.top_k, s.embedder, s.chunk_tokens, s.chunk_overlap) == (11, "my-embedder", 64, 4)
    assert s.decoder == "smollm2-135m"  # untouched fields keep their defaults


def test_toml_under_lloco_table(monkeypatch, tmp_path):
    cfg = _toml(tmp_path / "conf.toml", '[lloco]\ntop_k = 12\ndtype = "bfloat16"\n\n[other]\ntop_k = 99\n')
    monkeypatch.setenv("LLOCO_CONFIG", str(cfg))
    s = Settings()
    assert s.top_k == 12 and s.dtype == "bfloat16"


def test_toml_in_home_is_read_without_lloco_config(monkeypatch, tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    _toml(home / "lloco.toml", "top_k = 13\n")
    monkeypatch.setenv("LLOCO_HOME", str(home))
    assert Settings().top_k == 13
    default = default_home()
    default.mkdir(parents=True)
    _toml(default / "lloco.toml", "top_k = 14\n")
    monkeypatch.delenv("LLOCO_HOME")
    assert Settings().top_k == 14


def test_precedence_kwargs_over_env_over_toml(monkeypatch, tmp_path):
    cfg = _toml(tmp_path / "conf.toml", "top_k = 2\nmax_new_tokens = 20\nsummary_tokens = 3\n")
    monkeypatch.setenv("LLOCO_CONFIG", str(cfg))
    monkeypatch.setenv("LLOCO_TOP_K", "5")
    monkeypatch.setenv("LLOCO_MAX_NEW_TOKENS", "50")
    s = Settings(top_k=8)
    assert s.top_k == 8  # kwarg beats env and TOML
    assert s.max_new_tokens == 50  # env beats TOML
    assert s.summary_tokens == 3  # TOML beats default
    assert Settings().top_k == 5


def test_lloco_config_missing_file_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("LLOCO_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        Settings()


def test_invalid_toml_raises(monkeypatch, tmp_path):
    cfg = _toml(tmp_path / "bad.toml", "top_k = = 3\n")
    monkeypatch.setenv("LLOCO_CONFIG", str(cfg))
    with pytest.raises(ValueError, match="invalid TOML"):
        Settings()


def test_unknown_key_in_toml_is_refused(monkeypatch, tmp_path):
    cfg = _toml(tmp_path / "conf.toml", "top_kk = 3\n")
    monkeypatch.setenv("LLOCO_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="top_kk"):
        Settings()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"top_k": 0}, "top_k"),
    ({"top_k": 101}, "top_k"),
    ({"chunk_tokens": 8}, "chunk_tokens"),
    ({"summary_tokens": 0}, "summary_tokens"),
    ({"max_file_mb": 0}, "max_file_mb"),
    ({"max_context_tokens": 100}, "max_context_tokens"),
    ({"dtype": "float64"}, "dtype"),
    ({"device": "tpu"}, "device"),
])
def test_validation_errors(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        Settings(**kwargs)


@pytest.mark.parametrize(("tokens", "overlap"), [(64, 64), (64, 100), (16, 16)])
def test_overlap_must_be_smaller_than_chunk(tokens, overlap):
    with pytest.raises(ValidationError, match=r"chunk_overlap .* must be smaller than chunk_tokens"):
        Settings(chunk_tokens=tokens, chunk_overlap=overlap)
    assert Settings(chunk_tokens=tokens, chunk_overlap=tokens - 1).chunk_overlap == tokens - 1


def test_overlap_checked_against_default_chunk_tokens(monkeypatch):
    monkeypatch.setenv("LLOCO_CHUNK_OVERLAP", "256")
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings()


def test_unknown_field_is_forbidden():
    with pytest.raises(ValidationError, match="topk"):
        Settings(topk=3)


def test_field_help_covers_every_field():
    rows = field_help()
    names = [name for name, _, _ in rows]
    assert names == list(Settings.model_fields)
    assert len(names) == len(set(names)) >= 19
    for name, env, help_text in rows:
        assert env == f"LLOCO_{name.upper()}"
        assert help_text.strip(), f"{name} has no help"
    assert {"top_k", "home", "database_url", "chunk_tokens", "dtype"} <= set(names)


def test_field_help_env_names_really_work(monkeypatch):
    env = dict((name, var) for name, var, _ in field_help())
    monkeypatch.setenv(env["summary_tokens"], "5")
    monkeypatch.setenv(env["embed_batch_size"], "3")
    s = Settings()
    assert s.summary_tokens == 5 and s.embed_batch_size == 3
