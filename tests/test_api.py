"""The REST API (issue 11; app/api.py) over the tiny model: every resource through the role matrix
{admin, analyst with a grant, analyst without, no key, bad key}, uploads that return a job, SSE
answers with sources and costs, bad input with the right status, and a live server on loopback."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from app.accounts.store import Accounts
from app.api.app import create_app
from app.api.server import serve_in_thread as live_api

QUESTION = "What did the keeper light?"


@pytest.fixture
def api(service, pdf_factory):
    """A client, the PDF factory and a key per principal: admin, granted analyst, stranger."""
    service.create_collection("alpha")
    service.ingest("alpha", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    accounts = Accounts(service.sessions)
    accounts.create_user("ann", "correct horse", role="admin")
    accounts.create_user("bob", "battery staple")
    accounts.create_user("eve", "eavesdropper!")
    accounts.grant("bob", "alpha")
    keys = {who: {"Authorization": f"Bearer {accounts.new_api_key(name)}"}
            for who, name in (("admin", "ann"), ("granted", "bob"), ("stranger", "eve"))}
    keys["none"], keys["bad"] = {}, {"Authorization": "Bearer lloco_not-a-real-key"}
    with TestClient(create_app(service, max_upload_mb=1)) as client:
        yield client, keys, pdf_factory


def _upload(client, headers, pdfs):
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in pdfs]
    return client.post("/api/collections/alpha/documents", headers=headers, files=files)


def _wait(client, headers, job_id):
    import time

    for _ in range(600):
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        assert "status" in job, job
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError("the job did not end")


READ_ROUTES = [("GET", "/api/collections/alpha", None), ("GET", "/api/collections/alpha/documents", None),
               ("POST", "/api/collections/alpha/ask", {"question": QUESTION, "mode": "rag", "stream": False, "top_k": 1})]


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
def test_reads_follow_the_role_matrix(api, method, path, body):
    client, keys, _ = api
    expected = {"admin": 200, "granted": 200, "stranger": 404, "none": 401, "bad": 401}
    got = {who: client.request(method, path, headers=h, json=body).status_code for who, h in keys.items()}
    assert got == expected
    refused = client.request(method, path, headers=keys["none"], json=body)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert set(refused.json()["error"]) == {"message", "type", "code"}


def test_collections_list_per_user_and_admin_changes(api):
    client, keys, _ = api
    assert client.post("/api/collections", headers=keys["admin"], json={"name": "beta"}).status_code == 201
    names = {who: [c["name"] for c in client.get("/api/collections", headers=keys[who]).json()]
             for who in ("admin", "granted", "stranger")}
    assert names == {"admin": ["alpha", "beta"], "granted": ["alpha"], "stranger": []}
    for who in ("granted", "stranger"):
        assert client.post("/api/collections", headers=keys[who], json={"name": "gamma"}).status_code == 403
    assert client.delete("/api/collections/alpha", headers=keys["granted"]).status_code == 403  # may read, not delete
    assert client.delete("/api/collections/beta", headers=keys["granted"]).status_code == 404  # may not even read
    assert client.delete("/api/collections/alpha", headers=keys["stranger"]).status_code == 404  # not even its name
    assert client.post("/api/collections", headers=keys["admin"], json={"name": "bad name!"}).status_code == 422  # the schema's pattern
    assert client.post("/api/collections", headers=keys["admin"], json={"name": "beta"}).status_code == 409  # exists
    assert client.delete("/api/collections/beta", headers=keys["admin"]).status_code == 204
    assert [c["name"] for c in client.get("/api/collections", headers=keys["admin"]).json()] == ["alpha"]


def test_upload_returns_a_job_with_progress_and_documents_can_be_deleted(api):
    client, keys, make_pdf = api
    pdfs = [make_pdf("tides.pdf", ["High tide came at noon."]), make_pdf("bells.pdf", ["The bell rang twice."])]
    assert _upload(client, keys["granted"], pdfs).status_code == 403
    assert _upload(client, keys["stranger"], pdfs).status_code == 404
    response = _upload(client, keys["admin"], pdfs)
    assert response.status_code == 202, response.text
    job = _wait(client, keys["admin"], response.json()["id"])
    assert job["status"] == "done" and job["fraction"] == 1.0
    assert sorted((r["path"], r["status"]) for r in job["result"]) == [("bells.pdf", "ingested"), ("tides.pdf", "ingested")]
    assert client.get(f"/api/jobs/{job['id']}", headers=keys["granted"]).status_code == 200  # may read alpha
    assert client.get(f"/api/jobs/{job['id']}", headers=keys["stranger"]).status_code == 404
    docs = {d["filename"]: d for d in client.get("/api/collections/alpha/documents", headers=keys["granted"]).json()}
    assert set(docs) == {"keeper.pdf", "tides.pdf", "bells.pdf"}
    assert client.delete("/api/collections/alpha/documents/tides.pdf", headers=keys["granted"]).status_code == 403
    assert client.delete(f"/api/collections/alpha/documents/{docs['tides.pdf']['id']}", headers=keys["admin"]).status_code == 200
    assert len(client.get("/api/collections/alpha/documents", headers=keys["admin"]).json()) == 2


def test_two_files_of_one_name_are_both_ingested_and_names_cannot_escape(api):
    client, keys, make_pdf = api
    first = make_pdf("same.pdf", ["The first file says north."])
    body_one = first.read_bytes()
    second = make_pdf("other.pdf", ["The second file says south."]).read_bytes()
    files = [("files", ("same.pdf", body_one, "application/pdf")), ("files", ("../../same.pdf", second, "application/pdf"))]
    job = _wait(client, keys["admin"], client.post("/api/collections/alpha/documents", headers=keys["admin"],
                                                   files=files).json()["id"])
    assert [r["status"] for r in job["result"]] == ["ingested", "ingested"]
    names = [d["filename"] for d in client.get("/api/collections/alpha/documents", headers=keys["admin"]).json()]
    assert names.count("same.pdf") == 2


def test_oversized_and_malformed_uploads_are_refused_and_change_nothing(api):
    client, keys, _ = api
    before = client.get("/api/collections/alpha/documents", headers=keys["admin"]).json()
    big = [("files", ("big.txt", b"x" * (2 * 1024 * 1024), "text/plain"))]
    response = client.post("/api/collections/alpha/documents", headers=keys["admin"], files=big)
    assert response.status_code == 413 and "max_upload_mb" in response.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit is enforced while the body streams
        boundary = b"xyz"
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n\r\n"
        for _ in range(40):
            yield b"y" * 65536
        yield b"\r\n--" + boundary + b"--\r\n"

    response = client.post("/api/collections/alpha/documents", content=chunked(),
                           headers={**keys["admin"], "content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 413
    assert client.post("/api/collections/alpha/documents", headers=keys["admin"], json={"x": 1}).status_code == 400
    assert client.get("/api/collections/alpha/documents", headers=keys["admin"]).json() == before


def test_ask_streams_tokens_then_sources_verification_and_costs(api):
    client, keys, _ = api
    with client.stream("POST", "/api/collections/alpha/ask", headers=keys["granted"],
                       json={"question": QUESTION, "mode": "rag", "top_k": 1}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [(block.split("\n")[0][len("event: "):], json.loads(block.split("\n")[1][len("data: "):]))
                  for block in response.read().decode().strip().split("\n\n")]
    kinds = [k for k, _ in events]
    assert kinds[-4:] == ["sources", "verification", "costs", "done"] and set(kinds[:-4]) <= {"token"}
    data = dict(events[-4:])
    assert data["verification"]["verdict"] in ("supported", "partly", "unsupported", "empty")  # issue 23
    assert data["verification"]["summary"] and data["costs"]["verify_s"] >= 0
    assert data["sources"][0]["document"] == "keeper.pdf" and data["sources"][0]["page"] == 1
    assert {"snippet", "score", "document_id"} <= set(data["sources"][0])
    assert data["costs"]["mode"] == "rag" and data["costs"]["prompt_tokens"] > 0 and data["costs"]["ttft_s"] is not None
    assert data["done"]["answer"] == "".join(d["text"] for k, d in events if k == "token").strip()


def test_compare_reports_each_mode_with_ratios_to_rag(api):
    client, keys, _ = api
    body = client.post("/api/collections/alpha/compare", headers=keys["granted"],
                       json={"question": QUESTION, "modes": ["lloco", "rag"], "top_k": 1}).json()
    assert set(body["answers"]) == {"lloco", "rag"}
    assert body["answers"]["rag"]["vs_rag"] is None
    assert body["answers"]["lloco"]["vs_rag"]["prompt_tokens"] < 1  # lloco's prompt is shorter than rag's


def test_bad_questions_get_422_or_400_with_a_message(api):
    client, keys, _ = api
    url = "/api/collections/alpha/ask"
    cases = [({"question": ""}, 422), ({"question": "x" * 5000}, 422), ({"question": QUESTION, "mode": "magic"}, 422),
             ({"question": QUESTION, "top_k": 0}, 422), ({"nothing": 1}, 422)]
    for body, status in cases:
        response = client.post(url, headers=keys["admin"], json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["message"].startswith("malformed request")
    response = client.post(url, headers={**keys["admin"], "content-type": "application/json"}, content=b"{not json")
    assert response.status_code == 422
    assert client.post(url, headers=keys["admin"], json={"question": "   "}).status_code == 422  # blank: the schema's pattern


def test_eval_runs_are_for_admins_on_server_paths_under_the_roots(api, service):
    from tests.test_eval_runner import LAMP_QS, LIGHTHOUSE, write_quality

    client, keys, _ = api
    assert client.get("/api/eval/runs", headers=keys["admin"]).json() == []
    assert client.get("/api/eval/runs", headers=keys["granted"]).status_code == 403
    assert client.get("/api/eval/runs/nope", headers=keys["admin"]).status_code == 404
    (service.settings.home / "data").mkdir()
    data = write_quality(service.settings.home / "data" / "quality.jsonl", (LIGHTHOUSE, LAMP_QS))
    body = {"dataset": "quality", "path": str(data), "modes": ["rag"], "limit": 2, "top_k": 1, "run_name": "api-run"}
    assert client.post("/api/eval/runs", headers=keys["granted"], json=body).status_code == 403
    outside = client.post("/api/eval/runs", headers=keys["admin"], json={**body, "path": "/etc/passwd"})
    assert outside.status_code == 400 and "server root" in outside.json()["error"]["message"]
    started = client.post("/api/eval/runs", headers=keys["admin"], json=body)
    assert started.status_code == 202, started.text
    job = _wait(client, keys["admin"], started.json()["id"])
    assert job["status"] == "done", job
    assert client.get(f"/api/jobs/{job['id']}", headers=keys["granted"]).status_code == 404
    [run] = client.get("/api/eval/runs", headers=keys["admin"]).json()
    assert (run["name"], run["status"]) == ("api-run", "done")
    summary = client.get("/api/eval/runs/api-run", headers=keys["admin"]).json()
    assert [m["mode"] for m in summary["modes"]] == ["rag"] and summary["modes"][0]["n_ok"] == 2


def test_a_live_server_on_loopback_serves_docs_and_questions(service, api):
    _, keys, _ = api
    with live_api(service) as base:
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "lloco"
        assert httpx.get(f"{base}/docs").status_code == 200
        with httpx.stream("POST", f"{base}/api/collections/alpha/ask", headers=keys["granted"], timeout=60,
                          json={"question": QUESTION, "mode": "lloco", "top_k": 1}) as response:
            text = "".join(response.iter_text())
        assert "event: sources" in text and text.rstrip().endswith("}") and "event: done" in text
        assert httpx.get(f"{base}/api/collections", headers=keys["bad"]).status_code == 401


def test_jobs_are_cancelled_by_admins_and_readable_from_the_catalog(service, api):
    import threading

    from app.jobs.runner import JobRunner

    _, keys, _ = api
    runner, started = JobRunner(sessions=service.sessions), threading.Event()

    def long(report):
        for i in range(2000):
            report(i / 2000, f"step {i}")
            started.set()
            threading.Event().wait(0.01)

    job = runner.submit("rebuild", "rebuild alpha", long, collection="alpha")
    assert started.wait(10)
    with TestClient(create_app(service, jobs=runner)) as client:
        assert client.post(f"/api/jobs/{job.id}/cancel", headers=keys["granted"]).status_code == 403
        assert client.post(f"/api/jobs/{job.id}/cancel", headers=keys["stranger"]).status_code == 404
        response = client.post(f"/api/jobs/{job.id}/cancel", headers=keys["admin"])
        assert response.status_code == 200 and response.json()["cancel_requested"]
        assert job.wait(10) and job.status == "cancelled"
    with TestClient(create_app(service)) as other:  # another server (a restart): the job is read from the catalog
        body = other.get(f"/api/jobs/{job.id}", headers=keys["granted"]).json()
        assert (body["status"], body["kind"]) == ("cancelled", "rebuild")


def test_a_kept_second_look_restarts_the_stream_and_reports_both_answers(api, service, monkeypatch):
    """Issue 23: with on_doubt, lloco's unsure answer is replaced: a `restart` event, then the kept
    answer's tokens; the costs carry both answers and both confidences."""
    from tests.fakes import fixed_confidence

    monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(-2.0),
                                                               "rag": fixed_confidence(2.0)})
    service.settings.on_doubt = "rag"
    client, keys, _ = api
    with client.stream("POST", "/api/collections/alpha/ask", headers=keys["granted"],
                       json={"question": QUESTION, "mode": "lloco", "top_k": 1}) as response:
        events = [(block.split("\n")[0][len("event: "):], json.loads(block.split("\n")[1][len("data: "):]))
                  for block in response.read().decode().strip().split("\n\n")]
    kinds = [k for k, _ in events]
    assert kinds.count("restart") == 1
    after = [d["text"] for k, d in events[kinds.index("restart"):] if k == "token"]
    data = dict(events[-4:])
    look = data["costs"]["second_look"]
    assert look["kind"] == "rag" and look["kept"] == "second" and look["confidence"] > look["first_confidence"]
    assert data["done"]["answer"] == "".join(after).strip() == look["text"]
    assert data["verification"]["confidence"] == pytest.approx(look["confidence"])
