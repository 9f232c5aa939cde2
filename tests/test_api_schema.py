"""Property-based tests of the REST and OpenAI-compatible API (issues 11 and 26) with Schemathesis.

For every operation of the OpenAPI schema, requests generated from it — conforming ones and ones
that break it (huge and boundary integers, wrong types, missing fields, malformed bodies) — sent
with an admin's key, an analyst's key and no key, must pass every check Schemathesis has: no server
error, responses that conform to the documented schema, status codes and content types, bad data
rejected. A few hand-made bodies Schemathesis does not generate (non-UTF-8, broken multipart) follow.
The long run of the same suite, with stateful sequences, is ``bench/api_fuzz.py``."""

from __future__ import annotations

import pytest

from app.accounts.store import Accounts
from app.api.app import create_app
from bench.api_fuzz import fuzz_operations

EXAMPLES = 6  # per operation, generation mode and key: ~600 requests in all


@pytest.fixture
def app_and_keys(service, pdf_factory):
    service.create_collection("alpha")
    service.ingest("alpha", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    accounts = Accounts(service.sessions)
    accounts.create_user("ann", "correct horse", role="admin")
    accounts.create_user("bob", "battery staple", role="analyst")
    accounts.grant("bob", "alpha")
    return create_app(service, max_upload_mb=1), {"admin": accounts.new_api_key("ann"),
                                                   "analyst": accounts.new_api_key("bob"), "none": None}


def test_no_generated_request_breaks_a_check(app_and_keys):
    app, keys = app_and_keys
    report = fuzz_operations(app, keys, examples=EXAMPLES)
    assert report.operations >= 14  # every route is in the schema, /v1 included
    assert report.examples >= report.operations * 2 * len(keys) * 2
    assert report.failures == [], "\n\n".join(report.failures[:5])


@pytest.mark.parametrize("headers,body", [
    ({"Content-Type": "application/json"}, b'{"question": "\xff\xfe caf\xe9?"}'),
    ({"Content-Type": "application/json"}, b'{"question": '),
    ({"Content-Type": "application/json"}, b'{"question": "q", "top_k": true}'),
    ({"Content-Type": "application/json"}, b'{"question": "q", "document_ids": [99999999999999999999999]}'),
    ({"Content-Type": "text/plain"}, b"question"),
])
def test_malformed_ask_bodies_get_a_4xx_in_the_one_error_shape(app_and_keys, headers, body):
    from fastapi.testclient import TestClient

    app, keys = app_and_keys
    with TestClient(app) as client:
        reply = client.post("/api/collections/alpha/ask", content=body,
                            headers={**headers, "Authorization": f"Bearer {keys['admin']}"})
    assert 400 <= reply.status_code < 500, reply.text
    assert set(reply.json()) == {"error"} and reply.json()["error"]["code"] == reply.status_code


def test_a_path_with_a_nul_is_a_400_not_a_crash(app_and_keys):
    """Found by the stateful fuzz run: os.stat raised ValueError on a dataset path holding a NUL."""
    from fastapi.testclient import TestClient

    app, keys = app_and_keys
    with TestClient(app) as client:
        reply = client.post("/api/eval/runs", headers={"Authorization": f"Bearer {keys['admin']}"},
                            json={"dataset": "squad", "path": "/tmp/a\u0000b.json"})
    assert reply.status_code == 400 and "NUL" in reply.json()["error"]["message"]


def test_huge_ids_unknown_routes_and_methods_are_4xx_in_the_one_error_shape(app_and_keys):
    from fastapi.testclient import TestClient

    app, keys = app_and_keys
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    huge = "99999999999999999999999"
    with TestClient(app) as client:
        for method, url, status in [("GET", f"/api/jobs/{huge}", 422), ("POST", f"/api/jobs/{huge}/cancel", 422),
                                    ("GET", f"/api/eval/runs/{huge}", 404), ("GET", "/api/eval/runs/\u0663", 404),
                                    ("DELETE", f"/api/collections/alpha/documents/{huge}", 404),
                                    ("GET", "/api/nowhere", 404), ("PUT", "/api/collections", 405)]:
            reply = client.request(method, url, headers=auth)
            assert reply.status_code == status, (method, url, reply.text)
            assert reply.json()["error"]["code"] == status


def test_a_broken_multipart_upload_is_a_400_and_a_name_is_cleaned(app_and_keys, service):
    from fastapi.testclient import TestClient

    app, keys = app_and_keys
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    with TestClient(app) as client:
        garbage = client.post("/api/collections/alpha/documents", content=b"this is not multipart at all",
                              headers={**auth, "Content-Type": "multipart/form-data; boundary=XX"})
        assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "InvalidInputError", garbage.text
        raw = (b'--XX\r\nContent-Disposition: form-data; name="files"; filename="nl\nname\x1b.txt"\r\n\r\n'
               + b"The keeper lit the lamp at dusk. " * 20 + b"\r\n--XX--\r\n")  # as curl sends a name with a newline
        named = client.post("/api/collections/alpha/documents", content=raw,
                            headers={**auth, "Content-Type": "multipart/form-data; boundary=XX"})
        assert named.status_code == 202, named.text
        job = _settled(client, auth, named.json()["id"])
        assert job["status"] == "done", job
    names = [d.filename for d in service.list_documents("alpha")]
    assert "nl name.txt" in names and not any("\n" in n or "\x1b" in n for n in names)


def test_analysts_see_file_names_and_admins_paths(app_and_keys, service):
    from fastapi.testclient import TestClient

    from app.api.common import job_body
    from indexing import catalog_queries as cq

    app, keys = app_and_keys
    cq.set_adapter_path(service.sessions, service.get_collection("alpha").id, "/srv/lloco/adapters/alpha-reader")
    admin, analyst = ({"Authorization": f"Bearer {keys[k]}"} for k in ("admin", "analyst"))
    with TestClient(app) as client:
        assert client.get("/api/collections/alpha", headers=admin).json()["adapter_path"] == "/srv/lloco/adapters/alpha-reader"
        assert client.get("/api/collections/alpha", headers=analyst).json()["adapter_path"] == "alpha-reader"
        assert [c["adapter_path"] for c in client.get("/api/collections", headers=analyst).json()] == ["alpha-reader"]

    class Trained:  # a train job's result names the adapter's folder on the server
        id, kind, label, collection, status, fraction, message, error, seconds = 3, "train", "t", "alpha", "done", 1, "", None, 1.0
        result = {"path": "/srv/lloco/adapters/alpha-reader", "steps": 2, "runs": [{"qa_file": "/srv/qa.jsonl"}]}

    assert job_body(Trained)["result"]["path"] == "/srv/lloco/adapters/alpha-reader"
    assert job_body(Trained, paths=False)["result"] == {"path": "alpha-reader", "steps": 2, "runs": [{"qa_file": "qa.jsonl"}]}


def _settled(client, auth, job_id: int) -> dict:
    import time

    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=auth).json()
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)
