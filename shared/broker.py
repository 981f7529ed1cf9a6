"""kombu's Redis transport, with one publishing client per channel instead of one per publish.

kombu's Redis channel makes a new `redis.Redis` for every command it sends outside its
consumer (`conn_or_acquire`), and a client's constructor copies some 150 response
callbacks: on a submit that was about a third of what handing the message over cost
(bench/publish.py). The clients share the channel's connection pool either way, so one
kept per channel (and per pool: kombu drops its pool after a connection error) sends
the same commands over the same connections.

Registered under the `redis` and `rediss` schemes themselves, not a scheme of its own:
Flower picks its broker page's client by the URL's scheme, and BROKER_URL stays what
operators wrote.
"""
from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _publisher = None  # (pool, client)

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        kept = self._publisher
        if kept is None or kept[0] is not pool:
            kept = self._publisher = (pool, self._create_client())
        yield kept[1]


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make redis:// and rediss:// broker URLs use this transport (before any connection is made)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
