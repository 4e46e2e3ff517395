"""Prometheus metrics (``GET /metrics``): requests and latencies per route template, decisions per policy and
selector, deadline-flagged answers, bandit selections and feedback, and training jobs by state.

With several worker processes (``redwood serve --workers N``) the server sets ``PROMETHEUS_MULTIPROC_DIR`` to
a fresh temporary directory before the workers start, every worker writes its samples there, and a scrape
served by any worker aggregates all of them (prometheus_client's multiprocess mode): counters and histograms
are sums over workers. With one process the default registry (plus process and platform metrics) is used.

Labels are bounded: routes are templates (``/v1/sessions/{session_id}/select``, never raw paths; requests that
match no route are ``unmatched``), decisions are labelled by policy id (registered policies only) and
selector, never by session or request.
"""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
JOB_TABLES = ("jobs", "training_jobs")
FEEDBACK_ROUTE = "/v1/sessions/{session_id}/decisions/{selection_id}/feedback"
SELECT_ROUTE = "/v1/sessions/{session_id}/select"

REQUESTS = Counter(
    "redwood_http_requests", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "redwood_http_request_duration_seconds",
    "HTTP request latency (first byte in to last byte out of the app) by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "redwood_decisions",
    "Decisions made (replays not counted) by policy, selector used and solver status",
    ["policy_id", "selector", "status"],
)
DECISION_SECONDS = Histogram(
    "redwood_decision_seconds",
    "Solver time of a decision by policy and selector used",
    ["policy_id", "selector"],
    buckets=LATENCY_BUCKETS,
)
DEADLINE_HITS = Counter(
    "redwood_decisions_deadline_hit",
    "Decisions flagged deadline_hit (time limit reached, "
    "or the greedy answer after the deadline passed) by policy and selector used",
    ["policy_id", "selector"],
)
SELECTIONS = Counter("redwood_bandit_selections", "Bandit session selections answered")
FEEDBACK = Counter(
    "redwood_bandit_feedback",
    "Bandit feedback requests acknowledged: outcome stored (201) or "
    "replayed (200, identical feedback already recorded); rate() gives feedback per second",
    ["outcome"],
)
JOBS = Gauge(
    "redwood_jobs",
    "Training jobs by state (from the jobs table when it exists, else as last reported "
    "through api.service.metrics.set_job_states)",
    ["state"],
    multiprocess_mode="mostrecent",
)

_known_states: set[str] = set(JOB_STATES)
_states_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def set_job_states(counts: dict[str, int]) -> None:
    """Report how many training jobs are in each state (states not given are 0). Called by the jobs service
    when it changes; when the database has a ``jobs`` table the scrape also refreshes the gauge from it."""
    with _states_lock:
        _known_states.update(str(s) for s in counts)
        for state in sorted(_known_states):
            JOBS.labels(state=state).set(int(counts.get(state, 0)))


def job_states_from_db(db) -> dict[str, int] | None:
    """{state: count} from the jobs table (``jobs`` or ``training_jobs``, column ``state`` or ``status``), or
    None when there is no such table (or it cannot be read)."""
    try:
        inspector = sa.inspect(db.read)
        tables = set(inspector.get_table_names())
        for name in JOB_TABLES:
            if name not in tables:
                continue
            columns = {c["name"] for c in inspector.get_columns(name)}
            column = next((c for c in ("state", "status") if c in columns), None)
            if column is None:
                continue
            table = sa.table(name, sa.column(column))
            with db.read.connect() as conn:
                rows = conn.execute(sa.select(table.c[column], sa.func.count()).group_by(table.c[column])).all()
            return {str(state): int(n) for state, n in rows}
    except Exception:  # metrics never fail a scrape because of the jobs table
        return None
    return None


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    REQUEST_SECONDS.labels(method=method, route=route).observe(seconds)
    if method == "POST" and route == FEEDBACK_ROUTE and status in (200, 201):
        FEEDBACK.labels(outcome="stored" if status == 201 else "replayed").inc()
    elif method == "POST" and route == SELECT_ROUTE and status == 201:
        SELECTIONS.inc()


def observe_decision(response: dict) -> None:
    """Count one decision (a fresh one, not a replay) from its response body."""
    policy, selector = str(response.get("policy_id")), str(response.get("selector"))
    DECISIONS.labels(policy_id=policy, selector=selector, status=str(response.get("status"))).inc()
    DECISION_SECONDS.labels(policy_id=policy, selector=selector).observe(float(response.get("seconds") or 0.0))
    if response.get("deadline_hit"):
        DEADLINE_HITS.labels(policy_id=policy, selector=selector).inc()


def _registry() -> CollectorRegistry:
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition(db=None) -> tuple[bytes, str]:
    """(body, content type) of a scrape; ``db`` refreshes the job-state gauge from the jobs table first."""
    if db is not None:
        counts = job_states_from_db(db)
        if counts is not None:
            set_job_states(counts)
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def sample_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample in an exposition text (tests, scripts); None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                return float(sample.value)
    return None


__all__ = ["exposition", "observe_decision", "observe_request", "sample_value", "set_job_states"]
