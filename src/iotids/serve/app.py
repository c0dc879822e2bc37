"""The HTTP service: ``POST /v1/score``, ``GET /healthz``, ``GET /metrics`` (Prometheus), OpenAPI at ``/docs``.

``POST /v1/score`` takes JSON ``{"flows": [{feature: number, ...}, ...]}`` or, with ``Content-Type: text/csv``,
CICFlowMeter's own CSV (a header in any layout iotids reads, one flow per line; 2-3 times cheaper to parse than
the JSON, whose every flow repeats ~80 keys). The JSON route parses the body once (orjson; pydantic-core's
parser only for NaN/Infinity literals, which orjson refuses) and builds the feature matrix directly; only when
that fails (a missing field, text where a number belongs, NaN, a value beyond float32) does it run the full
pydantic validation, whose errors name the field (``["body", "flows", 3, "flow_duration"]``); CSV errors name the
line and column. Bodies larger than ``max_body_bytes`` are refused with 413 before they are read in full.
"""

from __future__ import annotations

import itertools
import operator
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from pydantic_core import from_json

from iotids import __version__
from iotids.errors import InvalidParameterError
from iotids.serve.schemas import Health, ScoreResponse, flow_model, request_model

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from iotids.runtime import Scorer

#: Bucket upper bounds (seconds) of the request latency histogram.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PATHS = ("/v1/score", "/healthz", "/metrics", "/docs", "/openapi.json")


class Metrics:
    """Counters and the latency histogram behind ``GET /metrics``."""

    def __init__(self, model: str, backend: str) -> None:
        self.model, self.backend = model, backend
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.flows = 0
        self.alerts = 0
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0

    def request(self, path: str, status: int, seconds: float) -> None:
        path = path if path in _PATHS else "other"
        with self.lock:
            self.requests[path, status] = self.requests.get((path, status), 0) + 1
            if path == "/v1/score":
                self.latency_sum += seconds
                self.latency_count += 1
                for i, bound in enumerate(LATENCY_BUCKETS):
                    if seconds <= bound:
                        self.buckets[i] += 1

    def scored(self, flows: int, alerts: int) -> None:
        with self.lock:
            self.flows += flows
            self.alerts += alerts

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        with self.lock:
            out = [
                "# HELP iotids_model_info The model being served.",
                "# TYPE iotids_model_info gauge",
                f'iotids_model_info{{model="{_escape(self.model)}",backend="{self.backend}",'
                f'version="{__version__}"}} 1',
                "# HELP iotids_http_requests_total HTTP requests answered, by path and status.",
                "# TYPE iotids_http_requests_total counter",
            ]
            out += [f'iotids_http_requests_total{{path="{p}",status="{s}"}} {n}'
                    for (p, s), n in sorted(self.requests.items())]
            out += [
                "# HELP iotids_flows_scored_total Flows scored.",
                "# TYPE iotids_flows_scored_total counter",
                f"iotids_flows_scored_total {self.flows}",
                "# HELP iotids_alerts_total Flows scored at or above the threshold.",
                "# TYPE iotids_alerts_total counter",
                f"iotids_alerts_total {self.alerts}",
                "# HELP iotids_score_request_duration_seconds Time to answer POST /v1/score.",
                "# TYPE iotids_score_request_duration_seconds histogram",
            ]
            out += [f'iotids_score_request_duration_seconds_bucket{{le="{b}"}} {n}'
                    for b, n in zip(LATENCY_BUCKETS, self.buckets, strict=True)]
            out += [
                f'iotids_score_request_duration_seconds_bucket{{le="+Inf"}} {self.latency_count}',
                f"iotids_score_request_duration_seconds_sum {self.latency_sum!r}",
                f"iotids_score_request_duration_seconds_count {self.latency_count}",
            ]
        return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _TooLarge(Exception):
    pass


class LimitsMiddleware:
    """Refuses bodies over ``max_body_bytes`` (413, also when streamed without Content-Length) and records
    every request in ``metrics``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent_start = False

        async def send_recording(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status, sent_start = message["status"], True
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                raise _TooLarge
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _TooLarge
                return message

            await self.app(scope, receive_limited, send_recording)
        except _TooLarge:
            if sent_start:
                raise
            response = JSONResponse(
                {"detail": f"request body larger than {self.max_body_bytes} bytes; send fewer flows per request"},
                status_code=413,
            )
            await response(scope, receive, send_recording)
        finally:
            self.metrics.request(scope.get("path", ""), status, time.perf_counter() - started)


def create_app(scorer: Scorer, *, max_body_bytes: int = 16 << 20, max_flows: int = 10_000) -> FastAPI:
    """The FastAPI application serving ``scorer``.

    Parameters
    ----------
    scorer : anything with ``name``, ``backend``, ``threshold``, ``feature_columns`` and ``score_matrix``.
    max_body_bytes : larger request bodies get 413.
    max_flows : more flows in one request get 422.
    """
    if max_body_bytes < 1 or max_flows < 1:
        raise InvalidParameterError(
            f"The 'max_body_bytes' and 'max_flows' parameters must be >= 1. Got {max_body_bytes}, {max_flows}."
        )
    columns = list(scorer.feature_columns)
    threshold = float(scorer.threshold)
    _warm_up(scorer)
    Flow = flow_model(columns)
    ScoreRequest = request_model(Flow, max_flows)
    metrics = Metrics(scorer.name, scorer.backend)
    app = FastAPI(
        title="iotids", version=__version__,
        description=f"Intrusion detection on CICFlowMeter flow features. Model: {scorer.name} "
                    f"({len(columns)} features, threshold {threshold:g}, backend {scorer.backend}).",
    )
    app.add_middleware(LimitsMiddleware, max_body_bytes=max_body_bytes, metrics=metrics)
    app.state.scorer, app.state.metrics = scorer, metrics

    def invalid(errors: list[dict[str, Any]]) -> JSONResponse:
        return JSONResponse({"detail": errors}, status_code=422)

    @app.post("/v1/score", response_model=ScoreResponse, summary="Score a batch of flows",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}},
                  "text/csv": {"schema": {"type": "string", "description": "CICFlowMeter CSV: a header line in "
                               "any layout iotids reads, then one flow per line; results carry the line"}}}}},
              responses={413: {"description": "body too large"}, 422: {"description": "invalid flows"}})
    async def score(request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-type", "").startswith("text/csv"):
            return score_csv(body)
        try:
            data = orjson.loads(body)  # 1.6x faster than pydantic-core's parser on 1,000 flows
        except orjson.JSONDecodeError:
            try:  # NaN/Infinity literals: parsed here, then refused with the field they are in
                data = from_json(body, allow_inf_nan=True)
            except ValueError as exc:
                return invalid([{"type": "json_invalid", "loc": ["body"], "msg": f"invalid JSON: {exc}"}])
        X = _fast_matrix(data, columns, max_flows)
        if X is None:
            try:
                parsed = ScoreRequest.model_validate(data)
            except ValidationError as exc:
                return invalid([{**e, "loc": ["body", *e["loc"]]} for e in
                                exc.errors(include_url=False, include_context=False, include_input=False)])
            X = np.array([[getattr(f, c) for c in columns] for f in parsed.flows], np.float32)  # type: ignore[attr-defined]
        return respond(X, "id", [f.get("id") for f in data["flows"]])

    csv_parsers: dict[bytes, Any] = {}

    def score_csv(body: bytes) -> Response:
        """A CICFlowMeter CSV body (header line + rows, any layout iotids reads); one bad line refuses it all."""
        from iotids.errors import DataFormatError, SchemaMismatchError
        from iotids.stream.readers import CsvParser

        header, _, rows = body.partition(b"\n")
        header = header.rstrip(b"\r")
        try:
            parser = csv_parsers.get(header) or CsvParser(header, "body", columns)
        except (DataFormatError, SchemaMismatchError) as exc:
            return invalid([{"type": "csv_header", "loc": ["body", "line", 1], "msg": str(exc)}])
        if len(csv_parsers) < 16:
            csv_parsers[header] = parser
        if rows and not rows.endswith(b"\n"):
            rows += b"\n"
        block = parser.parse(rows, 2, time.monotonic()) if rows.strip() else None
        if block is None or (not len(block) and not block.bad):
            return invalid([{"type": "missing", "loc": ["body", "line", 2], "msg": "no flow rows after the header"}])
        if block.bad:
            return invalid([{"type": "bad_record", "loc": ["body", "line", b.line], "msg": b.reason}
                            for b in block.bad[:20]])
        if len(block) > max_flows:
            return invalid([{"type": "too_long", "loc": ["body"], "msg": f"at most {max_flows} flows per request"}])
        return respond(block.X, "line", block.lines.tolist())

    def respond(X: np.ndarray, key: str, keys: list[Any]) -> Response:
        scores = scorer.score_matrix(X)
        hits = scores >= threshold
        results = [{"score": round(s, 6), "attack": h} for s, h in
                   zip(scores.astype(np.float64).tolist(), hits.tolist(), strict=True)]
        for result, value in zip(results, keys, strict=True):
            if value is not None:
                result[key] = value
        alerts = int(hits.sum())
        metrics.scored(len(results), alerts)
        payload = {"model": scorer.name, "threshold": threshold, "count": len(results), "alerts": alerts,
                   "results": results}
        return Response(orjson.dumps(payload), media_type="application/json")

    @app.get("/healthz", response_model=Health, summary="Liveness and the model served")
    async def healthz() -> Health:
        return Health(status="ok", model=scorer.name, backend=scorer.backend, features=len(columns))

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            body = ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["ScoreRequest"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _warm_up(scorer: Scorer) -> None:
    """Pay the one-time costs before the first request rather than in it: ONNX Runtime's first run, and
    pyarrow's first array conversion, which imports pandas (0.3-0.4 s added to the first CSV request)."""
    import pyarrow as pa

    scorer.score_matrix(np.zeros((1, len(scorer.feature_columns)), np.float32))
    pa.array(np.zeros(1))


def _fast_matrix(data: Any, columns: list[str], max_flows: int) -> np.ndarray | None:
    """The feature matrix when every flow is well-formed (the common case), else None (validate in full).

    Accepts what pydantic's lax mode accepts for a float (numbers, numeric strings); anything else, a missing
    key, or a value that is not a finite float32 sends the request to the full validation for its error.
    """
    flows = data.get("flows") if isinstance(data, dict) else None
    if not isinstance(flows, list) or not 1 <= len(flows) <= max_flows or len(columns) < 2:
        return None
    try:
        values = np.fromiter(itertools.chain.from_iterable(map(operator.itemgetter(*columns), flows)),
                             np.float64, count=len(flows) * len(columns))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        X = values.reshape(len(flows), len(columns)).astype(np.float32)
    if not np.isfinite(X).all():
        return None
    return X
