"""Real processes for fault tests: redis-server, `python -m broker`, nginx as a gRPC proxy and
SDK worker processes, each started in its own process group and always cleaned up.

`Processes` owns everything it starts: `close()` (the fixtures call it, also on failure)
terminates each process group, SIGKILLs what is still there after a few seconds, and resumes
SIGSTOPped processes first so that they can exit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.embedded_redis import find_redis_server

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
WORKER_MAIN = Path(__file__).with_name("worker_main.py")
PYTHONPATH = f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float, what: str = "condition") -> float:
    """Poll `condition` every 50 ms; return the seconds it took, fail after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.05)
    return time.monotonic() - start


def health(target: str, timeout: float = 2.0) -> int | None:
    """The grpc.health.v1 status of `target`, or None when it does not answer."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            status: int = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout).status
            return status
    except grpc.RpcError:
        return None


def serving(target: str) -> bool:
    return bool(health(target) == health_pb2.HealthCheckResponse.SERVING)


def redis_ping(port: int) -> bool:
    """True when redis on 127.0.0.1:port answers +PONG (not -LOADING)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (exited, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


class Proc:
    """One started process (and the process group it leads), with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill9(self) -> None:
        """SIGKILL the process itself (not its group: children see their parent vanish)."""
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process freezes with its sockets open."""
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL the group after `timeout`. Returns the exit code."""
        if self.stopped:
            self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            return self.popen.wait(10)

    def kill_group(self) -> None:
        """SIGKILL the process group, while its leader (ours, not yet reaped) is alive."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Processes:
    """Starts and always cleans up the processes of one test, logs under `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []
        self._redis = find_redis_server()

    def spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # its own group: cleanup reaches its children too
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop everything started, newest first (workers before brokers before Redis):
        SIGCONT and SIGTERM, then SIGKILL the process group after 5 s."""
        for proc in reversed(self.procs):
            if proc.alive():
                proc.resume()
                proc.signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(5)
            proc.kill_group()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
        self.procs.clear()

    # --- redis-server -------------------------------------------------------------------------

    def redis(self, name: str = "redis", port: int | None = None, *, aof: bool = True) -> Redis:
        """A redis-server on 127.0.0.1 (AOF with appendfsync always), data in workdir/<name>."""
        data = self.workdir / name
        data.mkdir(exist_ok=True)
        for _attempt in range(5):
            chosen = port or free_port()
            args = [
                self._redis, "--port", str(chosen), "--bind", "127.0.0.1", "--dir", str(data),
                "--save", "", "--appendonly", "yes" if aof else "no",
                "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning",
            ]  # fmt: skip
            proc = self.spawn(name, args)
            deadline = time.monotonic() + 15
            while proc.alive() and not redis_ping(chosen) and time.monotonic() < deadline:
                time.sleep(0.02)
            if redis_ping(chosen):
                return Redis(proc, chosen, data)
            proc.terminate(5)
            if port is not None:
                break
        raise AssertionError(f"redis-server did not start:\n{proc.tail()}")

    def restart_redis(self, old: Redis) -> Redis:
        """A new redis-server on the same port and data dir (the AOF is replayed)."""
        return self.redis(old.proc.name, old.port)

    # --- brokers ------------------------------------------------------------------------------

    def broker_env(self, listen: str, redis_url: str | None, **settings: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
        env.update(PYTHONPATH=PYTHONPATH, JOBWIRE_LISTEN=listen, JOBWIRE_GRACE_PERIOD="5")
        if redis_url is not None:
            env["JOBWIRE_REDIS_URL"] = redis_url
        for key, value in settings.items():
            env[f"JOBWIRE_{key.upper()}"] = str(value)
        return env

    def broker(
        self,
        name: str,
        redis_url: str | None,
        port: int | None = None,
        *,
        wait: bool = True,
        **settings: Any,
    ) -> Broker:
        """`python -m broker` on 127.0.0.1:<port> (a free one by default), SERVING when returned.

        `settings` become JOBWIRE_* variables (repair_interval=0.5 -> JOBWIRE_REPAIR_INTERVAL).
        """
        chosen = port or free_port()
        env = self.broker_env(f"127.0.0.1:{chosen}", redis_url, **settings)
        proc = self.spawn(name, [sys.executable, "-m", "broker"], env)
        broker = Broker(proc, chosen)
        if wait:
            wait_for(lambda: not proc.alive() or serving(broker.target), 30, f"{name} SERVING")
            assert proc.alive(), f"{name} exited with {proc.popen.returncode}:\n{proc.tail()}"
        return broker

    # --- nginx --------------------------------------------------------------------------------

    def nginx(self, upstreams: Iterable[str], name: str = "nginx") -> Nginx:
        """nginx on a free loopback port proxying gRPC (h2c) to `upstreams`, in a temp prefix."""
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        prefix = self.workdir / name
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(prefix, port, list(upstreams)))
        args = [executable, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        proc = self.spawn(name, args)
        target = f"127.0.0.1:{port}"
        wait_for(lambda: not proc.alive() or serving(target), 30, "nginx SERVING")
        assert proc.alive(), f"nginx exited:\n{proc.tail()}\n{(prefix / 'error.log').read_text()}"
        return Nginx(proc, port)

    # --- workers ------------------------------------------------------------------------------

    def worker(
        self,
        name: str,
        target: str,
        namespace: str,
        runs: Path,
        *,
        concurrency: int = 8,
        heartbeat: float = 1.0,
        queues: Iterable[str] = ("default",),
    ) -> Proc:
        """A worker process (tests/faults/worker_main.py) appending every run to `runs`."""
        env = {**os.environ, "PYTHONPATH": PYTHONPATH}
        args = [
            sys.executable, str(WORKER_MAIN), "--target", target, "--namespace", namespace,
            "--runs", str(runs), "--concurrency", str(concurrency),
            "--heartbeat", str(heartbeat), "--queues", ",".join(queues),
        ]  # fmt: skip
        return self.spawn(name, args, env)


@dataclass
class Redis:
    proc: Proc
    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Broker:
    proc: Proc
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Nginx:
    proc: Proc
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def nginx_conf(prefix: Path, port: int, upstreams: list[str]) -> str:
    """An unprivileged nginx: everything under `prefix`, no daemon, gRPC over h2c.

    A broker that refuses connections is skipped for 2 s (`max_fails=1`); `grpc_next_upstream`
    retries a call on the other broker only while nothing was sent. Long read/send timeouts keep
    idle server streams (the broker's keepalives arrive every few seconds anyway).
    """
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    # As root, nginx would switch its workers to `nobody`, who cannot enter the temp prefix.
    user = "user root;" if os.geteuid() == 0 else ""
    tmp = prefix / "tmp"
    return f"""
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream brokers {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    client_max_body_size 0;
    http2_max_concurrent_streams 1024;
    grpc_connect_timeout 2s;
    grpc_read_timeout 1h;
    grpc_send_timeout 1h;
    grpc_next_upstream error timeout;
    grpc_next_upstream_tries 2;
    location / {{
      grpc_pass grpc://brokers;
    }}
  }}
}}
"""


# --- what the worker processes recorded ---------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One line of the runs file: a job attempt that started or finished in a worker."""

    event: str  # "start" or "done"
    job: int
    retries: int
    pid: int
    at: float  # unix time


def read_runs(path: Path) -> list[Run]:
    """Every complete line of the runs file (a worker killed mid-line leaves no half record)."""
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] in ("start", "done"):
            event, job, retries, pid, at = parts
            runs.append(Run(event, int(job), int(retries), int(pid), float(at)))
    return runs


def longest_pause(runs: Path, after: float) -> float:
    """The longest time (s) without a finished job from unix time `after` to the last one."""
    times = sorted([after] + [r.at for r in read_runs(runs) if r.event == "done" and r.at > after])
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


@dataclass
class Tally:
    """Outcome of a run of jobs, counted from the broker's states and the workers' records."""

    total: int
    finished: int
    lost: int  # acknowledged ids the broker no longer knows
    stuck: int  # known but not finished
    stuck_states: Counter[str]  # "state: result" of those
    done_twice: int  # jobs whose task completed more than once (any attempt)
    attempt_done_twice: int  # the same attempt (job, retries) completed more than once
    done_by: Counter[int]  # completed attempts per worker pid

    def __str__(self) -> str:
        return (
            f"total={self.total} finished={self.finished} lost={self.lost} stuck={self.stuck} "
            f"{dict(self.stuck_states) if self.stuck else ''} "
            f"finished_twice={self.done_twice} same_attempt_twice={self.attempt_done_twice} "
            f"done_by_pid={dict(self.done_by)}"
        )


def retrying(call: Callable[[], T], attempts: int = 20, unavailable: list[int] | None = None) -> T:
    """`call()`, again after UNAVAILABLE answers (Redis or a broker coming back), 0.1 s apart;
    each UNAVAILABLE is counted in `unavailable[0]` when given."""
    from jobwire import JobwireError

    for attempt in range(attempts):
        try:
            return call()
        except JobwireError as error:
            if error.code != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            if unavailable is not None:
                unavailable[0] += 1
            time.sleep(0.1)
    raise AssertionError("unreachable")


def tally(client: Any, ids: list[int], runs: Path) -> Tally:
    """Compare the broker's view of `ids` with what the workers recorded in `runs`."""
    states: dict[int, str] = {}
    results: Counter[str] = Counter()  # results of jobs that did not finish
    pending = list(ids)
    while pending:
        # A page holds fewer rows than asked when big jobs would overflow one message.
        page = functools.partial(client.list_jobs, limit=100, ids=pending[:100])
        infos = retrying(page)
        for info in infos:
            states[info.id] = info.state
            if info.state != "finished":
                results[f"{info.state}: {info.result}"[:80]] += 1
        asked, pending = pending[:100], pending[100:]
        pending = [i for i in asked if i not in states and infos] + pending
    done = [run for run in read_runs(runs) if run.event == "done"]
    per_job = Counter(run.job for run in done)
    per_attempt = Counter((run.job, run.retries) for run in done)
    return Tally(
        total=len(ids),
        finished=sum(1 for i in ids if states.get(i) == "finished"),
        lost=sum(1 for i in ids if i not in states),
        stuck=sum(1 for i in ids if i in states and states[i] != "finished"),
        stuck_states=results,
        done_twice=sum(1 for n in per_job.values() if n > 1),
        attempt_done_twice=sum(1 for n in per_attempt.values() if n > 1),
        done_by=Counter(run.pid for run in done),
    )
