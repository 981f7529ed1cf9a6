"""What the publish costs a submit: `python -m bench.publish [--rounds N]`.

Measures, on the bench Redis, the CPU and wall time of handing one job's message to the
broker as a submit does (inline, after the commit), and per message when 100 go through
kombu's Producer.batch, plus the Redis commands each costs (INFO commandstats); each with
kombu's own Redis transport and with shared.broker's, in alternating rounds (a process
each), medians printed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

N = 2000


def commandstats(client) -> dict:
    return {k: v["calls"] for k, v in client.info("commandstats").items()}


def measure(label: str, send, client, count: int) -> dict:
    before = commandstats(client)
    cpu, wall = time.process_time(), time.perf_counter()
    send()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = commandstats(client)
    calls = {k.removeprefix("cmdstat_"): after.get(k, 0) - before.get(k, 0) for k in after
             if after.get(k, 0) - before.get(k, 0) > 0}
    return {"label": label, "messages": count, "cpu_us_per_message": round(cpu / count * 1e6, 1),
            "wall_us_per_message": round(wall / count * 1e6, 1),
            "redis_commands_per_message": {k: round(v / count, 2) for k, v in sorted(calls.items())}}


def one_round(transport: str) -> list[dict]:
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
    from kombu import Connection
    from kombu.transport import TRANSPORT_ALIASES

    from shared.celery_app import app

    if transport == "kombu":  # before any connection: the stock transport, as before shared.broker
        TRANSPORT_ALIASES["redis"] = "kombu.transport.redis:Transport"
    from shared.jobs import fair_priority

    broker = Connection(app.conf.broker_url).default_channel.client
    ids = [str(uuid.uuid4()) for _ in range(N)]

    def inline():
        for job_id in ids:
            app.send_task("workers.ops.ping", args=[job_id], task_id=job_id, queue="maintenance",
                          priority=fair_priority(queue="maintenance", active=0))

    def batched():
        for start in range(0, N, 100):
            with app.producer_or_acquire() as producer, producer.batch(max_size=101):
                for job_id in ids[start:start + 100]:
                    app.send_task("workers.ops.ping", args=[job_id], task_id=job_id, queue="maintenance",
                                  priority=fair_priority(queue="maintenance", active=0), producer=producer)

    inline()  # warm: connections, lazy imports
    app.control.purge()
    results = [measure(f"{transport}: inline, one publish per submit", inline, broker, N)]
    app.control.purge()
    results.append(measure(f"{transport}: Producer.batch of 100", batched, broker, N))
    app.control.purge()
    return results


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one_round(sys.argv[2])))
        return 0
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    runs: dict[str, list[dict]] = {}
    for _ in range(rounds):
        for transport in ("kombu", "shared.broker"):
            out = subprocess.run([sys.executable, "-m", "bench.publish", "--one", transport], check=True,
                                 capture_output=True, text=True).stdout
            for result in json.loads(out.splitlines()[-1]):
                runs.setdefault(result["label"], []).append(result)
    summary = []
    for label, results in runs.items():
        cpu = sorted(r["cpu_us_per_message"] for r in results)
        wall = sorted(r["wall_us_per_message"] for r in results)
        summary.append({"label": label, "rounds": len(results), "cpu_us_per_message_median": cpu[len(cpu) // 2],
                        "wall_us_per_message_median": wall[len(wall) // 2], "cpu_us_per_message": cpu,
                        "redis_commands_per_message": results[0]["redis_commands_per_message"]})
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
