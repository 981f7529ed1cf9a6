"""One user flooding the api: POST /v1/jobs back to back until SIGTERM, then the count of
each status code as JSON on stdout. `make bench` runs it at nice 19: it stands for a client
on another machine, so its own CPU must not be taken from the platform it floods."""
from __future__ import annotations

import collections
import json
import signal
import sys

import requests


def main(url: str, token: str) -> None:
    answers: collections.Counter = collections.Counter()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with requests.Session() as http:
        while not stopping:
            try:
                response = http.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                                     json={"type": "tasks.quick_add", "params": {"text": "flood tomorrow 9am"}})
                answers[response.status_code] += 1
            except requests.RequestException as exc:
                answers[type(exc).__name__] += 1
    print(json.dumps(answers))


if __name__ == "__main__":
    main(*sys.argv[1:3])
