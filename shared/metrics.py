"""Prometheus metrics, by the names operators and dashboards rely on.

Every process defines the same objects; how they are exposed (the api's /metrics,
worker ports or the multiprocess directory) is the exposition's business, not the
code that counts.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
HTTP_REQUEST_DURATION = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])

JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted by the api", ["type"])
JOBS_FINISHED = Counter("jobs_finished_total", "Jobs that reached a terminal state", ["type", "status"])
JOB_RUN_SECONDS = Histogram(
    "job_run_seconds", "Time from a job's start to its end on a worker", ["type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
JOB_QUEUE_WAIT = Histogram(
    "job_queue_wait_seconds", "Time a job waited in its queue before a worker started it", ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUE_DEPTH = Gauge("queue_depth", "Messages waiting in each queue", ["queue"], multiprocess_mode="max")

AI_AGENT_CALLS = Counter("ai_agent_calls_total", "Calls to the AI provider", ["agent_type", "status"])
AI_TOKENS = Counter("ai_tokens_total", "AI tokens used", ["agent_type", "kind"])  # kind: prompt | completion
GOOGLE_API_CALLS = Counter("google_api_calls_total", "Calls to Google APIs", ["api", "status"])
