"""`jobwire health`: ask the broker's grpc.health.v1 service whether it serves (for probes).

Exit 0 when SERVING, 1 otherwise (NOT_SERVING while Redis is unreachable or the broker drains,
or the broker cannot be reached). Uses the same target, token and TLS options as every command,
so a container probe checks the broker the way its clients reach it.
"""

from __future__ import annotations

import argparse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jobwire.cli import _args
from jobwire.cli._output import CliError, Output
from jobwire.client import Client


def add_parser(
    commands: _args.Commands, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """Register `health`."""
    health = commands.add_parser(
        "health",
        parents=[common],
        help="exit 0 if the broker is SERVING (container probes)",
        description="Check the broker's gRPC health (grpc.health.v1); exit 0 when SERVING.",
    )
    health.set_defaults(run=check, default_timeout=5.0)
    return health


def check(client: Client, args: argparse.Namespace, out: Output) -> int:
    channel = client.channel_settings.channel()
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=client.timeout)
    except grpc.RpcError as error:
        raise CliError(f"broker at {client.target} is not reachable: {error.code().name}") from None
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    out.emit({"status": status}, lambda: out.line(status))
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1
