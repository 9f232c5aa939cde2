"""The OpenAI-compatible endpoints (issue 11; app/api_openai.py): /v1/models per key, chat
completions streamed and not, with lloco's mode/top_k as extra fields and the sources once —
through the official ``openai`` Python client against a live server on loopback, and raw HTTP."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from app.accounts.store import Accounts
from app.api.app import create_app
from app.api.server import serve_in_thread as live_api

VERDICTS = ("supported", "partly", "unsupported", "empty")  # of a question the collection can answer
QUESTION = "What did the keeper light?"


@pytest.fixture
def keys(service, pdf_factory):
    for name in ("alpha", "beta"):
        service.create_collection(name)
    service.ingest("alpha", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    accounts = Accounts(service.sessions)
    accounts.create_user("bob", "battery staple")
    accounts.grant("bob", "alpha")
    accounts.create_user("ann", "correct horse", role="admin")
    return {"analyst": accounts.new_api_key("bob"), "admin": accounts.new_api_key("ann")}


def test_the_official_client_lists_models_and_chats_streamed_and_not(service, keys):
    with live_api(service) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=keys["analyst"], max_retries=0, timeout=120)
        assert [m.id for m in client.models.list()] == ["alpha"]  # the analyst's one collection
        admin = openai.OpenAI(base_url=f"{base}/v1", api_key=keys["admin"], max_retries=0)
        assert sorted(m.id for m in admin.models.list()) == ["alpha", "beta"]

        reply = client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": QUESTION}],
                                               extra_body={"mode": "rag", "top_k": 1})
        assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
        assert reply.choices[0].finish_reason == "stop" and reply.usage.prompt_tokens > 0
        extra = reply.model_extra
        assert extra["sources"][0]["document"] == "keeper.pdf" and extra["sources"][0]["page"] == 1
        assert extra["lloco"]["mode"] == "rag" and extra["verification"]["verdict"] in VERDICTS  # issue 23

        chunks = list(client.chat.completions.create(model="alpha", stream=True, extra_body={"mode": "lloco", "top_k": 1},
                                                     messages=[{"role": "system", "content": "Be brief."},
                                                               {"role": "user", "content": QUESTION}]))
        assert chunks[0].choices[0].delta.role == "assistant"
        with_sources = [c for c in chunks if (c.model_extra or {}).get("sources")]
        assert len(with_sources) == 1 and with_sources[0] is chunks[-1]  # sources once, in the final chunk
        assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["lloco"]["mode"] == "lloco"
        assert chunks[-1].model_extra["verification"]["verdict"] in VERDICTS
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        same = client.chat.completions.create(model="alpha", extra_body={"mode": "lloco", "top_k": 1},
                                              messages=[{"role": "user", "content": QUESTION}])
        assert text.strip() == same.choices[0].message.content  # greedy: streamed and whole agree

        with pytest.raises(openai.NotFoundError):  # not granted: reported as missing
            client.chat.completions.create(model="beta", messages=[{"role": "user", "content": QUESTION}])
        bad = openai.OpenAI(base_url=f"{base}/v1", api_key="lloco_revoked", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_bad_chat_requests_get_clear_errors(service, keys):
    headers = {"Authorization": f"Bearer {keys['analyst']}"}
    with TestClient(create_app(service)) as client:
        url = "/v1/chat/completions"
        no_user = client.post(url, headers=headers, json={"model": "alpha", "messages": [{"role": "system", "content": "hi"}]})
        assert no_user.status_code == 400 and "user message" in no_user.json()["error"]["message"]
        assert client.post(url, headers=headers, json={"model": "alpha", "messages": []}).status_code == 422
        assert client.post(url, headers=headers, json={"model": "alpha", "messages": [{"role": "user", "content": QUESTION}],
                                                       "mode": "magic"}).status_code == 422
        parts = client.post(url, headers=headers, json={"model": "alpha", "top_k": 1, "mode": "rag", "messages": [
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]})
        assert parts.status_code == 200 and parts.json()["sources"]
        assert client.post(url, json={"model": "alpha", "messages": [{"role": "user", "content": QUESTION}]}).status_code == 401
