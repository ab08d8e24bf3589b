"""Bearer tokens: every RPC needs its role in the request's namespace; health and reflection stay
open; a broker beyond loopback without tokens or mTLS does not start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker import auth
from broker.auth import METHOD_ROLES, Authorizer, TokenTable, exposure_problem, is_loopback
from broker.config import Settings
from broker.server import SERVICE_NAMES, Broker
from jobwire.v1 import (
    admin_service_pb2,
    job_service_pb2,
    lock_service_pb2,
    schedule_service_pb2,
    worker_service_pb2,
)
from tests.security.helpers import ROOT, SECRETS, bearer, role_tokens, token_file

SERVICE_FILES = [
    job_service_pb2,
    worker_service_pb2,
    lock_service_pb2,
    schedule_service_pb2,
    admin_service_pb2,
]
RPCS = [
    method
    for module in SERVICE_FILES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def full_name(method: Any) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def call(
    channel: grpc.Channel, method: Any, namespace: str, metadata: Any = (), **fields: Any
) -> tuple[grpc.StatusCode, list[Any]]:
    """Call `method` with a request of `namespace` (and `fields`); its status and responses."""
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    request = request_class(namespace=namespace, **fields)
    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
    stub = kind(
        full_name(method),
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    received: list[Any] = []
    try:
        if method.server_streaming:
            for message in stub(request, metadata=metadata, timeout=1):
                received.append(message)
        else:
            received.append(stub(request, metadata=metadata, timeout=5))
    except grpc.RpcError as error:
        return error.code(), received
    return grpc.StatusCode.OK, received


# --- the table --------------------------------------------------------------------------------


def test_every_rpc_has_exactly_one_role() -> None:
    assert {full_name(m) for m in RPCS} == set(METHOD_ROLES)
    assert set(METHOD_ROLES.values()) <= set(auth.ROLES)
    served = {m.containing_service.full_name for m in RPCS}
    assert served == set(SERVICE_NAMES)  # the table covers every service the broker serves


def test_every_request_names_its_namespace() -> None:
    for method in RPCS:
        field = method.input_type.fields_by_name.get("namespace")
        assert field is not None and field.type == field.TYPE_STRING, full_name(method)
        assert not method.client_streaming, full_name(method)


# --- every role against every RPC ------------------------------------------------------------


@pytest.fixture
def guarded(make_broker: Any, tmp_path: Path) -> Any:
    return make_broker(auth_file=role_tokens(tmp_path / "tokens.toml"))


@pytest.mark.parametrize("role", list(SECRETS))
def test_each_role_may_call_exactly_its_rpcs(guarded: Any, namespace: str, role: str) -> None:
    with grpc.insecure_channel(guarded.target) as channel:
        for method in RPCS:
            needed = METHOD_ROLES[full_name(method)]
            code, received = call(channel, method, namespace, bearer(SECRETS[role]))
            if role in (needed, "admin"):
                assert code not in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                ), (role, full_name(method), code)
            else:
                assert (code, received) == (grpc.StatusCode.PERMISSION_DENIED, []), (
                    role,
                    full_name(method),
                )


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("not-a-token-of-this-broker"),
        (("authorization", SECRETS["admin"]),),  # no "Bearer" scheme
        (("authorization", "Basic " + SECRETS["admin"]),),
        (("authorization", "Bearer "),),
    ],
)
def test_no_or_unknown_token_is_unauthenticated(
    guarded: Any, namespace: str, metadata: Any
) -> None:
    with grpc.insecure_channel(guarded.target) as channel:
        for method in RPCS:
            code, received = call(channel, method, namespace, metadata)
            assert (code, received) == (grpc.StatusCode.UNAUTHENTICATED, []), full_name(method)


def test_denied_calls_change_nothing(guarded: Any, namespace: str) -> None:
    from jobwire import Client, JobwireError

    with Client(guarded.target, namespace=namespace, token=SECRETS["produce"]) as producer:
        job_id = producer.enqueue("kept")
        with pytest.raises(JobwireError) as raised:
            producer.reset(all=True)
        assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    with Client(guarded.target, namespace=namespace, token=SECRETS["read"]) as reader:
        info = reader.job_info(job_id)
        assert info is not None and info.task == "kept"
        with pytest.raises(JobwireError) as raised:
            reader.remove_job(job_id)
        assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert reader.job_info(job_id) is not None


def test_health_and_reflection_need_no_token(guarded: Any) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(guarded.target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {service.name for service in answer.list_services_response.service}
        assert set(SERVICE_NAMES) <= names


# --- namespaces ------------------------------------------------------------------------------


def test_namespace_globs(make_broker: Any, tmp_path: Path) -> None:
    secret = "shop-producer-0123456789"
    path = token_file(
        tmp_path / "tokens.toml",
        [{"secret": secret, "roles": ["produce", "read"], "namespaces": ["shop", "shop-*"]}],
    )
    guarded = make_broker(auth_file=path, namespace="shop")
    enqueue = next(m for m in RPCS if m.name == "Enqueue")
    with grpc.insecure_channel(guarded.target) as channel:

        def code(namespace: str) -> grpc.StatusCode:
            return call(channel, enqueue, namespace, bearer(secret), task="t")[0]

        for allowed in ("shop", "shop-eu", "shop-", ""):  # "" is the broker's default: shop
            assert code(allowed) == grpc.StatusCode.OK, allowed
        for denied in ("shopping", "Shop", "eshop", "default", "shop.eu"):
            assert code(denied) == grpc.StatusCode.PERMISSION_DENIED, denied
        # Allowed by the glob but malformed: the servicer's INVALID_ARGUMENT, never a grant.
        assert code("shop-{x}") == grpc.StatusCode.INVALID_ARGUMENT


def test_star_is_every_namespace_and_empty_means_the_default(
    make_broker: Any, tmp_path: Path
) -> None:
    secret = "reader-of-default-0123456789"
    everything = "reader-of-everything-0123"
    path = token_file(
        tmp_path / "tokens.toml",
        [
            {"secret": secret, "roles": ["read"], "namespaces": ["default"], "plain": True},
            {"secret": everything, "roles": ["read"], "namespaces": ["*"]},
        ],
    )
    guarded = make_broker(auth_file=path)
    stats = next(m for m in RPCS if m.name == "Stats")
    with grpc.insecure_channel(guarded.target) as channel:
        assert call(channel, stats, "", bearer(secret))[0] == grpc.StatusCode.OK
        assert call(channel, stats, "default", bearer(secret))[0] == grpc.StatusCode.OK
        assert call(channel, stats, "other", bearer(secret))[0] == grpc.StatusCode.PERMISSION_DENIED
        assert call(channel, stats, "any.thing", bearer(everything))[0] == grpc.StatusCode.OK


# --- the token file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[token]]\nsecret = 'short'\nroles=['read']\nnamespaces=['*']\n", "16 characters"),
        ("[[token]]\nsha256 = 'abc'\nroles=['read']\nnamespaces=['*']\n", "64 hex digits"),
        ("[[token]]\nroles=['read']\nnamespaces=['*']\n", "exactly one of sha256 and secret"),
        (f"[[token]]\nsecret='{'s' * 20}'\nroles=['root']\nnamespaces=['*']\n", "roles"),
        (f"[[token]]\nsecret='{'s' * 20}'\nroles=[]\nnamespaces=['*']\n", "roles"),
        (f"[[token]]\nsecret='{'s' * 20}'\nroles=['read']\n", "namespaces"),
        (f"[[token]]\nsecret='{'s' * 20}'\nroles=['read']\nnamespaces=['*']\nx=1\n", "unknown"),
        ("[tokens]\n", "expected only"),
        ("[[token]\n", "token file"),
    ],
)
def test_bad_token_files_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        TokenTable.load(path)


def test_a_bad_file_on_reload_keeps_the_old_tokens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = role_tokens(tmp_path / "tokens.toml")
    authorizer = Authorizer(path, "default")
    assert authorizer.authenticate(bearer(SECRETS["read"])) is not None
    path.write_text("not toml [")
    with caplog.at_level(logging.ERROR, logger="jobwire.broker"):
        assert not authorizer.reload()
    assert "token file not reloaded" in caplog.text
    assert authorizer.authenticate(bearer(SECRETS["read"])) is not None
    token_file(
        path, [{"secret": "fresh-secret-0123456789", "roles": ["read"], "namespaces": ["*"]}]
    )
    assert authorizer.reload()
    assert authorizer.authenticate(bearer(SECRETS["read"])) is None
    assert authorizer.authenticate(bearer("fresh-secret-0123456789")) is not None


# --- secure by default -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.1.2.3:0", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/run/jobwire.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.7:50051", False),
        ("jobwire.example:50051", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_beyond_loopback_needs_tokens_or_client_certificates() -> None:
    wide = "0.0.0.0:50051"
    flags = {"tokens": False, "client_certificates": False, "allow_insecure": False}
    problem = exposure_problem(wide, **flags)
    assert problem is not None and "JOBWIRE_ALLOW_INSECURE" in problem and "\n" not in problem
    for enough in flags:
        assert exposure_problem(wide, **{**flags, enough: True}) is None
    assert exposure_problem("127.0.0.1:50051", **flags) is None


async def test_broker_refuses_before_touching_redis(tmp_path: Path) -> None:
    # No Redis at this URL: the refusal comes first.
    settings = Settings(listen="0.0.0.0:0", redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match="refusing to listen on 0.0.0.0:0"):
        await Broker(settings).start()


async def test_bad_token_file_at_start_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text("[[token]]\nsecret = 'short'\n")
    settings = Settings(listen="127.0.0.1:0", redis_url="redis://127.0.0.1:1/0", auth_file=path)
    with pytest.raises(ValueError, match="token file"):
        await Broker(settings).start()


def test_the_deployment_example_token_file_loads(tmp_path: Path) -> None:
    example = (ROOT / "deploy" / "secret.example.yaml").read_text()
    block = example.split("tokens.toml: |\n", 1)[1].split("---", 1)[0]
    lines = [line.removeprefix("    ") for line in block.splitlines()]
    path = tmp_path / "tokens.toml"
    path.write_text("\n".join(lines))
    table = TokenTable.load(path)
    assert [sorted(t.roles) for t in table.tokens] == [
        ["produce", "read"],
        ["produce", "read", "work"],
        ["admin"],
    ]
