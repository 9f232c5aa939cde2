"""Shared fixtures: a tiny random model for unit tests, the real default model for integration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parent.parent
# converted real-model weights are shared by every test run of this checkout (made once, ~25 s)
MODEL_CACHE = Path(os.environ.get("LLOCO_TEST_MODEL_CACHE", REPO / ".cache" / "models"))
POSTGRES_URL = os.environ.get("LLOCO_TEST_POSTGRES_URL")  # a server to test the catalog on (.ci/run starts one)


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch):
    """Tests never read the developer's own LLOCO_* settings."""
    for key in list(os.environ):
        if key.startswith("LLOCO_") and not key.startswith("LLOCO_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    from tests.fakes import tiny_llama_folder

    return tiny_llama_folder(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_decoder(tiny_folder):
    import torch

    from model.loading import load_decoder

    return load_decoder(tiny_folder, name=str(tiny_folder), device="cpu", dtype=torch.float32)


@pytest.fixture
def settings(tmp_path, tiny_folder):
    from app.config import Settings

    return Settings(home=tmp_path / "home", decoder=str(tiny_folder), embedder="hash-64", compressor="untrained",
                    chunk_tokens=48, chunk_overlap=8, summary_tokens=4, max_new_tokens=6, device="cpu", dtype="float32")


@pytest.fixture
def pg_url():
    """A PostgreSQL database of its own for one test, created and dropped here (skipped without a server)."""
    import uuid

    from sqlalchemy import create_engine, text

    if not POSTGRES_URL:
        pytest.skip("LLOCO_TEST_POSTGRES_URL is not set: no PostgreSQL server to test on")
    name = f"lloco_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_backend_service(request, settings, tiny_decoder):
    """The tiny-model service on SQLite, then on PostgreSQL (where a server is set): for the catalog,
    job and concurrency tests that must hold on both."""
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    if request.param == "postgresql":
        settings = settings.model_copy(update={"database_url": request.getfixturevalue("pg_url")})
    return LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder())


@pytest.fixture
def service(settings, tiny_decoder):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    return LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder())


@pytest.fixture
def pdf_factory(tmp_path):
    from tests.fakes import make_pdf

    def make(name: str, pages: list[str]) -> Path:
        return make_pdf(tmp_path / name, pages)

    return make


@pytest.fixture(scope="session")
def real_service(tmp_path_factory):
    """The real default decoder and embedder (SmolLM2-135M + MiniLM), on a fresh home."""
    from app.config import Settings
    from app.core.service import LlocoService

    home = tmp_path_factory.mktemp("real-home")
    return LlocoService(Settings(home=home, model_cache=MODEL_CACHE))


@pytest.fixture
def web_service(service):
    """The web UI's pages served by the tiny-model ``service`` (AppTest runs them in this process)."""
    import streamlit as st

    from app.accounts.store import Principal
    from app.web.auth import use_principal
    from app.web.common import use_service

    st.cache_data.clear()
    st.cache_resource.clear()
    use_service(service)
    use_principal(Principal("test-admin", "admin"))  # the pages' own tests act as an admin
    yield service
    use_service(None)
    use_principal(None)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def catalog_at(tmp_path):
    """A factory: a SQLite catalog migrated only up to ``revision``, holding one collection 'old'.

    Returns (url, engine); opening the url with ``open_catalog`` upgrades it to the head.
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from indexing.catalog import MIGRATIONS, make_engine

    def make(revision: str):
        url = f"sqlite:///{tmp_path / f'old-{revision}.db'}"
        engine = make_engine(url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.execute(text("INSERT INTO collections (name, created_at, decoder, embedder, compressor, kappa, "
                              "chunk_tokens, chunk_overlap, embed_dim, hidden_size) "
                              "VALUES ('old', '2024-01-01', 'd', 'e', 'c', 4, 48, 8, 64, 64)"))
        return url, engine

    return make


def pytest_terminal_summary(terminalreporter) -> None:
    """Say which catalog backends this run tested (PostgreSQL only where LLOCO_TEST_POSTGRES_URL is set)."""
    import os

    url = os.environ.get("LLOCO_TEST_POSTGRES_URL")
    backends = "SQLite and PostgreSQL" if url else "SQLite only (no LLOCO_TEST_POSTGRES_URL: PostgreSQL tests skipped)"
    terminalreporter.write_line(f"catalog backends tested: {backends}")
