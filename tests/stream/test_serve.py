"""The HTTP service through real HTTP on loopback (uvicorn in a thread on a free port), with a trained model."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn

from iotids.runtime import Scorer, load_scorer
from iotids.serve import create_app

MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def server(tiny_model) -> Iterator[tuple[str, Scorer]]:
    scorer = load_scorer(tiny_model.path)
    app = create_app(scorer, max_body_bytes=MAX_BODY, max_flows=500)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", scorer
    instance.should_exit = True
    thread.join(timeout=10)


def _flows(tiny_model, rows: slice) -> list[dict]:
    frame = tiny_model.test_frame.iloc[rows]
    return [{c: float(frame[c].iloc[i]) for c in tiny_model.columns} | {"id": int(i)} for i in range(len(frame))]


def test_scores_match_the_model_and_alert_on_attacks(server, tiny_model) -> None:
    url, scorer = server
    flows = _flows(tiny_model, slice(0, 400))
    response = httpx.post(f"{url}/v1/score", json={"flows": flows}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    expected = scorer.score_matrix(tiny_model.test_frame[tiny_model.columns].to_numpy(np.float32)[:400])
    assert body["count"] == 400 and [r["id"] for r in body["results"]] == list(range(400))
    np.testing.assert_allclose([r["score"] for r in body["results"]], expected, atol=1e-6)
    attack = tiny_model.test_frame["is_attack"].to_numpy()[:400] == 1
    said = np.array([r["attack"] for r in body["results"]])
    assert body["alerts"] == said.sum() and (said == attack).mean() >= 0.9
    single = httpx.post(f"{url}/v1/score", json={"flows": flows[:1]}).json()
    assert single["results"][0]["score"] == body["results"][0]["score"]


@pytest.mark.parametrize(("mutate", "loc", "kind"), [
    (lambda f: f.pop("flow_duration"), ["body", "flows", 1, "flow_duration"], "missing"),
    (lambda f: f.update(flow_duration="abc"), ["body", "flows", 1, "flow_duration"], "float_parsing"),
    (lambda f: f.update(flow_duration=float("nan")), ["body", "flows", 1, "flow_duration"], "finite_number"),
    (lambda f: f.update(flow_duration=1e39), ["body", "flows", 1, "flow_duration"], "less_than_equal"),
])
def test_invalid_flows_get_422_naming_the_field(server, tiny_model, mutate, loc, kind) -> None:
    url, _ = server
    flows = _flows(tiny_model, slice(0, 3))
    mutate(flows[1])
    response = httpx.post(f"{url}/v1/score", content=json.dumps({"flows": flows}),
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"] == loc and errors[0]["type"] == kind


@pytest.mark.parametrize(("body", "loc"), [
    (b"{not json", ["body"]),
    (b'{"flows": []}', ["body", "flows"]),
    (b'{"rows": [1]}', ["body", "flows"]),
    (b'{"flows": [1, 2]}', ["body", "flows", 0]),
])
def test_malformed_bodies_get_422(server, body, loc) -> None:
    url, _ = server
    response = httpx.post(f"{url}/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == loc


def test_cicflowmeter_csv_bodies(server, tiny_model) -> None:
    url, scorer = server
    rows = tiny_model.test_frame["source_row"].to_numpy()[:300]
    body = "\n".join([tiny_model.header, *(tiny_model.lines[r] for r in rows)]) + "\n"
    headers = {"content-type": "text/csv"}
    response = httpx.post(f"{url}/v1/score", content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = scorer.score_matrix(tiny_model.test_frame[tiny_model.columns].to_numpy(np.float32)[:300])
    assert [r["line"] for r in results] == list(range(2, 302))
    np.testing.assert_allclose([r["score"] for r in results], expected, atol=1e-6)
    broken = body.replace(tiny_model.lines[rows[4]], tiny_model.lines[rows[4]][:60])
    errors = httpx.post(f"{url}/v1/score", content=broken.encode(), headers=headers).json()["detail"]
    assert errors[0]["loc"] == ["body", "line", 6] and errors[0]["type"] == "bad_record"
    unknown = httpx.post(f"{url}/v1/score", content=b"a,b\n1,2\n", headers=headers)
    assert unknown.status_code == 422 and "unknown layout" in unknown.json()["detail"][0]["msg"]


def test_too_many_flows_and_oversize_bodies_are_refused(server, tiny_model) -> None:
    url, _ = server
    flows = _flows(tiny_model, slice(0, 1))
    response = httpx.post(f"{url}/v1/score", json={"flows": flows * 501})
    assert response.status_code in (413, 422)
    big = json.dumps({"flows": flows * 2000}).encode()
    assert len(big) > MAX_BODY
    assert httpx.post(f"{url}/v1/score", content=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for start in range(0, len(big), 16384):
            yield big[start:start + 16384]

    assert httpx.post(f"{url}/v1/score", content=chunks()).status_code == 413


def test_health_metrics_and_openapi(server, tiny_model) -> None:
    url, scorer = server
    health = httpx.get(f"{url}/healthz").json()
    assert health == {"status": "ok", "model": scorer.name, "backend": scorer.backend,
                      "features": len(tiny_model.columns)}
    httpx.post(f"{url}/v1/score", json={"flows": _flows(tiny_model, slice(0, 5))})
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "# TYPE iotids_score_request_duration_seconds histogram" in lines
    assert any(line.startswith('iotids_http_requests_total{path="/v1/score",status="200"}') for line in lines)
    assert int(next(x for x in lines if x.startswith("iotids_flows_scored_total")).split()[1]) >= 5
    spec = httpx.get(f"{url}/openapi.json").json()
    flow = spec["components"]["schemas"]["Flow"]
    assert set(tiny_model.columns) <= set(flow["required"])
    assert spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScoreRequest"}
