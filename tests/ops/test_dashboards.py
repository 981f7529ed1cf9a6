"""The Prometheus rules and the Grafana dashboard parse, and name only metrics that the
running api and worker really export.

PromQL is not parsed by a PromQL parser here: metric names are pulled out of each
expression with regular expressions (`metric_names`), after removing what is not a
metric name: quoted strings (label values), label matchers `{...}`, ranges `[...]`,
grouping clauses `by (...)` / `without (...)` / `on (...)` / `ignoring (...)` /
`group_left (...)` / `group_right (...)`, function and aggregation names (an identifier
followed by `(`), PromQL keywords and numbers. What is left are the metric names.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import requests
import yaml

from tests.support import ROOT, ManagedProcess, free_port, wait_for_job

PROMETHEUS = ROOT / "ops" / "prometheus"
DASHBOARDS = ROOT / "ops" / "grafana"
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "le"}
# Made by Prometheus itself, not by our code.
SYNTHETIC = {"up"}
# Declared in shared/metrics.py, counted by the AI agents and the Google clients: absent
# from a scrape until the first call, which no test of this module makes. Remove a name
# here once a test here drives a call that counts it.
COUNTED_BY_CALLS = {"ai_agent_calls_total", "ai_tokens_total", "google_api_calls_total",
                    "notifications_sent_total", "webhook_deliveries_total"}  # tests/workers/test_push.py
# Exported by postgres_exporter and redis_exporter, not by our code: test_the_exporters_export_
# what_the_rules_name runs both against the test PostgreSQL and Redis to hold these to them.
EXPORTER_METRICS = {"pg_stat_database_numbackends", "pg_settings_max_connections", "redis_memory_used_bytes",
                    "redis_memory_max_bytes"}
ALERTMANAGER = ROOT / "ops" / "alertmanager" / "alertmanager.yml"

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (see the module's docstring)."""
    for pattern in (_STRING, _MATCHERS, _RANGES, _GROUPING):
        expr = pattern.sub(" ", expr)
    return {name for name in _IDENTIFIER.findall(expr) if name.lower() not in KEYWORDS}


def test_metric_names_are_found_and_the_rest_is_not():
    expr = ('histogram_quantile(0.95, sum by (le, queue) (rate(job_queue_wait_seconds_bucket'
            '{queue="interactive", x=~"a.b"}[5m]))) > 30 and on (queue) max without (pod) '
            '(queue_depth offset 5m) / ignoring(x) group_left(type) up{job="assistant-worker"} == bool 1e3')
    assert metric_names(expr) == {"job_queue_wait_seconds_bucket", "queue_depth", "up"}
    assert metric_names("time() - max(scheduler_last_tick_timestamp_seconds)") == {"scheduler_last_tick_timestamp_seconds"}
    assert metric_names('rate(x[$__rate_interval]) * 60') == {"x"}


def rules() -> list[dict]:
    config = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in config["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


def test_the_rules_parse_and_are_complete():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).exists()
    assert {job["job_name"] for job in config["scrape_configs"]} >= {"assistant-api", "assistant-worker", "flower"}
    names = {rule["alert"] for rule in rules()}
    assert {"QueueBacklogGrowing", "JobFailureRateHigh", "SchedulerStalled", "WorkerDown", "BackupTooOld",
            "BackupVerificationTooOld", "BackupVerificationFailed", "PostgresConnectionsNearLimit",
            "RedisMemoryHigh"} <= names
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert {job["job_name"] for job in config["scrape_configs"]} >= {"postgres", "redis"}
    for rule in rules():
        assert rule["expr"].strip() and rule["labels"]["severity"] and rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_promtool_accepts_the_rules_and_the_dashboards_queries_where_it_is_installed(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (optional: apt-get install prometheus)")
    # The dashboard's queries, as recording rules, so promtool parses them too.
    grafana_variables = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}
    records = []
    for number, expr in enumerate(dashboard_exprs()):
        for variable, value in grafana_variables.items():
            expr = expr.replace(variable, value)
        records.append({"record": f"dashboard:query{number}", "expr": expr})
    queries = tmp_path / "dashboard-queries.yml"
    queries.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    for path in (PROMETHEUS / "alerts.yml", queries):
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_shows_api_queues_jobs_and_ai():
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert {"http_request_duration_seconds_bucket", "http_requests_total", "queue_depth",
            "job_queue_wait_seconds_bucket", "jobs_finished_total", "ai_agent_calls_total",
            "ai_tokens_total", "db_pool_connections_in_use", "db_pool_overflow_connections",
            "backup_last_success_timestamp_seconds", "backup_last_verified_timestamp_seconds",
            "active_users"} <= used


def exported(text: str) -> set[str]:
    return {match.group(1) for match in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", text, re.M)}


@pytest.mark.worker
def test_rules_and_dashboard_name_only_metrics_the_code_exports(live_server, worker, user, headers):
    from prometheus_client import REGISTRY

    # A job through the live api and the worker, so both have counted something.
    http = requests.Session()
    submitted = http.post(f"{live_server.url}/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}},
                          headers=headers, timeout=10)
    assert submitted.status_code == 202, submitted.text
    assert wait_for_job(http, submitted.json()["id"], headers, base_url=live_server.url)["status"] == "succeeded"

    api_names = exported(http.get(f"{live_server.url}/metrics", timeout=10).text)
    worker_names = exported(http.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=10).text)
    assert "http_requests_total" in api_names and "jobs_finished_total" in worker_names

    declared = set(REGISTRY._names_to_collectors)
    assert COUNTED_BY_CALLS <= declared, "shared/metrics.py no longer declares these"
    known = api_names | worker_names | SYNTHETIC | COUNTED_BY_CALLS | EXPORTER_METRICS

    used = {}
    for rule in rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, f"alert {rule['alert']}")
    for expr in dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, "the Grafana dashboard")
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown, f"named but not exported: {unknown}"


def test_the_alertmanager_config_routes_every_severity_to_a_receiver():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(route["receiver"] in receivers for route in routes)
    severities = {rule["labels"]["severity"] for rule in rules()}
    routed = {m.split("=")[1].strip('"') for route in routes for m in route.get("matchers", [])}
    assert routed <= severities and "critical" in routed
    amtool = shutil.which("amtool")
    if amtool is None:
        message = "amtool is not installed; on Debian/Ubuntu: apt-get install prometheus-alertmanager"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


class Exporter(ManagedProcess):
    def __init__(self, name: str, args: list[str], env: dict):
        self.name = name
        self.port = free_port()
        self.args = args
        super().__init__(env)

    def command(self) -> list[str]:
        return [need(self.name), f"--web.listen-address=127.0.0.1:{self.port}", *self.args]

    def ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def scrape(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=30).text


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    message = f"{tool} is not installed; on Debian/Ubuntu: apt-get install {tool}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def test_the_exporters_export_what_the_rules_name():
    from sqlalchemy.engine import make_url

    from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

    dsn = make_url(TEST_DATABASE_URL).set(query={"sslmode": "disable"}).render_as_string(hide_password=False)
    postgres = Exporter("prometheus-postgres-exporter", [], {"DATA_SOURCE_NAME": dsn}).start()
    redis_exporter = Exporter("prometheus-redis-exporter", [f"--redis.addr={TEST_REDIS_URL}"], {}).start()
    try:
        pg_text, redis_text = postgres.scrape(), redis_exporter.scrape()
    finally:
        postgres.stop()
        redis_exporter.stop()
    assert re.search(r"^pg_up 1$", pg_text, re.M), postgres.log_tail()  # it reached the server
    assert re.search(r"^redis_up 1$", redis_text, re.M), redis_exporter.log_tail()
    names = exported(pg_text) | exported(redis_text)
    assert EXPORTER_METRICS <= names, f"not exported: {EXPORTER_METRICS - names}"
