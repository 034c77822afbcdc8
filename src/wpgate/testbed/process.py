"""Start, watch and stop the test bed's server processes, so that none outlives the bed."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from wpgate.errors import WpgateError


class TestBedError(WpgateError):
    """A test bed service could not be built, started or reached."""

    __test__ = False


_PR_SET_PDEATHSIG = 1
_registry_lock = threading.RLock()  # re-entered by the SIGTERM handler
_live_processes: dict[int, "ManagedProcess"] = {}
_temporary_roots: set[Path] = set()
_handed_out_ports: set[int] = set()
_hooks_installed = False
_previous_sigterm: object = None


def set_port_range(first: int, last: int) -> None:
    """Hand out ports only from first..last in this process: parallel test workers each get a
    range of their own below the kernel's ephemeral ports, so two workers never draw the same
    port between choosing it and binding it."""
    global _port_range, _next_port
    with _registry_lock:
        _port_range = (first, last)
        _next_port = first


_port_range: tuple[int, int] | None = None
_next_port = 0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (and not handed out before)."""
    global _next_port
    with _registry_lock:
        if _port_range is not None:
            first, last = _port_range
            for _ in range(last - first + 1):
                port = _next_port
                _next_port = first if port >= last else port + 1
                if port not in _handed_out_ports and _bindable(port):
                    _handed_out_ports.add(port)
                    return port
            raise TestBedError(f"no free TCP port left in {first}-{last} on 127.0.0.1")
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with _registry_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port
    raise TestBedError("no free TCP port found on 127.0.0.1")


_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes with its NUL; keep a margin


def socket_path(folder: Path, name: str) -> Path:
    """Where a server's Unix socket goes: in `folder`, unless that path is too long for a socket
    (deep temporary folders of parallel test runs), then in a short private folder under /tmp,
    removed with the test bed's other temporary folders."""
    path = folder / name
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        return path
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="wpgate-sock-", dir="/tmp"))
    register_temporary_root(short)
    return short / name


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the test process is killed outright
    # (SIGKILL leaves no chance to clean up), the kernel sends SIGTERM to our servers.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def _children_of(pid: int) -> list[int]:
    """Every live descendant of pid (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def pid_alive(pid: int) -> bool:
    """Whether pid is a running process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[0] != "Z"


# Where the tests give command-line PHP OPcache's file cache (tests/conftest.py): its folder holds the cache
# and, in `ini/`, the settings PHP_INI_SCAN_DIR adds.
CLI_CODE_CACHE = "WPGATE_TEST_PHP_CLI_CACHE"


def without_cli_code_cache(environment: dict[str, str]) -> dict[str, str]:
    """`environment` as a server of the bed gets it: the command-line code cache's settings taken out of
    PHP_INI_SCAN_DIR. A web server's PHP keeps OPcache in shared memory, set as a host sets it (a site
    that never revalidates included), and shares no compiled code with another site's."""
    folder = environment.pop(CLI_CODE_CACHE, None)
    scan = environment.get("PHP_INI_SCAN_DIR")
    if folder and scan is not None:
        kept = [part for part in scan.split(":") if part != str(Path(folder) / "ini")]
        if kept == [""]:  # only the compiled-in folder was left: the variable was not set before
            del environment["PHP_INI_SCAN_DIR"]
        else:
            environment["PHP_INI_SCAN_DIR"] = ":".join(kept)
    return environment


def forget_cli_code(path: Path) -> None:
    """Drop what the command-line code cache holds for files under `path` (a site being removed): a later
    site at the same path may have other code with the same modification times."""
    folder = os.environ.get(CLI_CODE_CACHE)
    if not folder:
        return
    for system in Path(folder).glob("cache/*"):
        shutil.rmtree(system / Path(path).resolve().relative_to("/"), ignore_errors=True)


class ManagedProcess:
    """One server process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.pids_seen: set[int] = set()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        install_cleanup_hooks()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = without_cli_code_cache(dict(os.environ))
        if self.env:
            environment.update(self.env)
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.cwd, env=environment, start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise TestBedError(f"{self.name}: cannot run {self.argv[0]}: {error}") from error
        self.pids_seen.add(self.process.pid)
        with _registry_lock:
            _live_processes[self.process.pid] = self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def fail(self, message: str, extra_logs: Sequence[Path] = ()) -> TestBedError:
        """An error naming this process, with the tail of its log(s); the process is stopped."""
        tails = [f"--- {self.log_path.name} ---\n{self.log_tail()}"]
        for path in extra_logs:
            try:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-30:])
            except OSError:
                continue
            tails.append(f"--- {path.name} ---\n{text}")
        self.stop()
        return TestBedError(f"{self.name}: {message}\n" + "\n".join(tails))

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30.0,
                   extra_logs: Sequence[Path] = ()) -> None:
        """Poll `ready` until it holds; stop and raise (with the log tail) if the process dies
        or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise self.fail(f"exited with status {code} before {what}", extra_logs)
            if ready():
                self.pids_seen.update(_children_of(self.process.pid))
                return
            if time.monotonic() > deadline:
                raise self.fail(f"not {what} after {timeout:.0f}s", extra_logs)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def wait_for_port(self, port: int, timeout: float = 30.0, extra_logs: Sequence[Path] = ()) -> None:
        self.wait_until(lambda: port_answers(port), f"listening on 127.0.0.1:{port}", timeout,
                        extra_logs)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process, its process group and every descendant; wait until they are gone.
        Safe to call more than once."""
        process = self.process
        if process is None:
            return
        targets = set(_children_of(process.pid)) if process.poll() is None else set()
        self.pids_seen.update(targets)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
        for pid in targets:
            _signal_pid(pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
        # Workers may take a moment longer than their master; never leave one behind.
        deadline = time.monotonic() + timeout
        while any(pid_alive(pid) for pid in targets) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in targets:
            if pid_alive(pid):
                _signal_pid(pid, signal.SIGKILL)
        _signal_group(process.pid, signal.SIGKILL)
        with _registry_lock:
            _live_processes.pop(process.pid, None)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_pid(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def register_temporary_root(path: Path) -> None:
    """A folder the emergency cleanup removes when the test process dies."""
    with _registry_lock:
        _temporary_roots.add(path)


def forget_temporary_root(path: Path) -> None:
    with _registry_lock:
        _temporary_roots.discard(path)


def stop_everything() -> None:
    """Stop every process any test bed started and remove their temporary folders."""
    with _registry_lock:
        processes = list(_live_processes.values())
        roots = list(_temporary_roots)
        _temporary_roots.clear()
    for process in reversed(processes):
        try:
            process.stop(timeout=5)
        except Exception:  # noqa: BLE001 - an emergency cleanup goes on whatever happens
            pass
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def _on_sigterm(signum: int, frame: object) -> None:
    stop_everything()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # Die of SIGTERM as we would have without this handler.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def install_cleanup_hooks() -> None:
    """Once per process: stop our servers at interpreter exit and on SIGTERM."""
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(stop_everything)
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)


def run(argv: Sequence[str], *, what: str, input: str | None = None,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120.0) -> str:
    """Run a short command to completion; its stdout, or a TestBedError with its output."""
    environment = dict(os.environ)
    if env:
        environment.update(env)
    try:
        result = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                                env=environment, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise TestBedError(f"{what}: timed out after {timeout:.0f}s") from error
    except OSError as error:
        raise TestBedError(f"{what}: cannot run {argv[0]}: {error}") from error
    if result.returncode != 0:
        output = "\n".join(part for part in (result.stderr.strip(), result.stdout.strip()) if part)
        raise TestBedError(f"{what}: {argv[0]} exited with status {result.returncode}\n{output}")
    return result.stdout
