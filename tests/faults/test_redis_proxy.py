"""The lost-reply proxy itself: Redis executes the command, the client never sees the reply."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.harness import Processes, wait_for
from tests.faults.redis_proxy import RedisProxy, command

NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture
def proxy(procs: Processes) -> Iterator[RedisProxy]:
    server = procs.redis(aof=False)
    relay = RedisProxy(server.port).start()
    try:
        yield relay
    finally:
        relay.stop()


def test_relays_and_loses_a_reply_with_a_reset(proxy: RedisProxy, procs: Processes) -> None:
    direct = redis.Redis(port=proxy.upstream_port)
    client = redis.Redis(port=proxy.port, retry=NO_RETRY)
    assert client.set("k", 1) and client.get("k") == b"1"
    proxy.lose_replies(1, match=command("INCRBY"), then="reset")  # redis-py: INCR is INCRBY
    with pytest.raises(redis.exceptions.ConnectionError):
        client.incr("k")
    assert direct.get("k") == b"2"  # executed, reply lost
    assert proxy.lost == 1
    assert client.incr("k") == 3  # a new connection works again
    client.close()
    direct.close()


def test_hold_swallows_the_reply_and_everything_after(proxy: RedisProxy) -> None:
    direct = redis.Redis(port=proxy.upstream_port)
    client = redis.Redis(port=proxy.port, socket_timeout=0.5, retry=NO_RETRY)
    client.set("k", 1)
    proxy.lose_replies(1, match=command("INCRBY"), then="hold")
    with pytest.raises(redis.exceptions.TimeoutError):
        client.incr("k")
    assert direct.get("k") == b"2"
    client.close()
    direct.close()


def test_reset_all_breaks_open_connections(proxy: RedisProxy) -> None:
    client = redis.Redis(port=proxy.port, retry=NO_RETRY)
    errors: list[BaseException] = []

    def block() -> None:
        try:
            client.blpop(["never"], timeout=10)
        except redis.exceptions.ConnectionError as error:
            errors.append(error)

    waiter = threading.Thread(target=block)
    waiter.start()
    wait_for(lambda: proxy.connections() == 1, 5, "one connection")
    time.sleep(0.2)  # BLPOP is in Redis
    assert proxy.reset_all() == 1
    waiter.join(5)
    assert len(errors) == 1
    client.close()
