"""Startup checks of the Redis server's configuration: one WARNING per risk, never a refusal.

An evicting `maxmemory-policy` can drop a job's key (data loss); a standalone Redis without AOF
loses recent jobs on a restart; servers older than 6.2 lack commands the scripts rely on.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
import redis.exceptions

log = logging.getLogger("jobwire.redis")

MIN_VERSION = (6, 2)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


async def _config(client: aioredis.Redis, name: str) -> str | None:
    """CONFIG GET `name`; None (said at INFO) when the server does not allow CONFIG."""
    try:
        reply = await client.config_get(name)
    except redis.exceptions.ResponseError as error:
        log.info("cannot read Redis setting %s (%s); not checking it", name, error)
        return None
    values = {_text(k): _text(v) for k, v in reply.items()}
    return values.get(name)


async def check_redis(client: aioredis.Redis) -> list[str]:
    """Logs a WARNING for each risky setting of the server and returns the warnings."""
    warnings: list[str] = []
    server = await client.info("server")
    version = _text(server.get("redis_version", "0"))
    if _version(version) < MIN_VERSION:
        warnings.append(
            f"Redis {version} is older than {'.'.join(map(str, MIN_VERSION))}, the oldest "
            "version jobwire supports"
        )
    policy = await _config(client, "maxmemory-policy")
    if policy is not None and policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy}: Redis may evict job keys when full (lost "
            "jobs); set it to noeviction"
        )
    replication = await client.info("replication")
    standalone = (
        _text(replication.get("role", "master")) == "master"
        and int(replication.get("connected_slaves", 0)) == 0
    )
    if standalone:
        appendonly = await _config(client, "appendonly")
        if appendonly is not None and appendonly != "yes":
            warnings.append(
                "Redis has no replica and appendonly is off: a Redis restart loses the jobs "
                "written since its last snapshot; set appendonly yes"
            )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings
