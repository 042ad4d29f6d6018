"""Prometheus metrics of one proxy app, served at ``GET /metrics``.

Every app owns its ``CollectorRegistry`` (never the global one), so two apps in one process count
separately. Label children are cached per label tuple: on the hot path an observation is a dict
lookup plus prometheus-client's own lock. Label values are bounded: routes are the app's own paths,
models are configured ``model_name``s (anything a client invents is ``"unknown"``), errors are
exception class names and their origin (client / upstream / internal). With several uvicorn workers
each worker counts its own requests. With a master key, scraping needs it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from llmplex.proxy.errors import ProxyError, error_response

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics", "metrics_endpoint"]

# LLM calls range from a cached 20 ms answer to minutes of generation
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ProxyMetrics:
    """The proxy's counters, histograms and gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.requests = Counter(
            "llmplex_proxy_requests", "HTTP requests answered", ["route", "model", "status"], registry=reg
        )
        self.latency = Histogram(
            "llmplex_proxy_request_duration_seconds",
            "Time from request to the last byte of the answer",
            ["route", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "llmplex_proxy_time_to_first_token_seconds",
            "Streams: time from request to the first content chunk sent",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=reg,
        )
        self.upstream_errors = Counter(
            "llmplex_proxy_upstream_errors", "Failed upstream calls by error class", ["model", "error"], registry=reg
        )
        self.errors = Counter(
            "llmplex_proxy_errors",
            "Errors by origin: client (refused before any upstream call), upstream, internal (a bug)",
            ["model", "origin", "error"],
            registry=reg,
        )
        self.race_wins = Counter("llmplex_proxy_race_wins", "Races won (fastest_response)", ["model"], registry=reg)
        self.race_cancelled = Counter(
            "llmplex_proxy_race_cancelled", "Race losers cancelled before they finished", ["model"], registry=reg
        )
        self.hedges = Counter(
            "llmplex_proxy_hedges_sent", "Race contenders started after a hedge delay", ["model"], registry=reg
        )
        # a plain counter read at scrape time: Gauge.inc()/dec() take a lock twice per request
        self.requests_in_flight = 0
        self.in_flight = Gauge("llmplex_proxy_requests_in_flight", "Requests being handled", registry=reg)
        self.in_flight.set_function(lambda: self.requests_in_flight)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached (``labels()`` takes a lock and builds a key each time)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def count_errors(self, model: str, errors: Sequence[str]) -> None:
        for error in errors:
            self.child(self.upstream_errors, model, error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    """The metrics; with a master key, only for a request that carries it (they name every model)."""
    state = request.app.state.llmplex
    try:
        state.auth.check(request.headers)
    except ProxyError as exc:
        return error_response(exc)
    metrics: ProxyMetrics = state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
