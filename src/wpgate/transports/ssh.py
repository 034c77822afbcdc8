"""The site is on another host: commands go through the OpenSSH client over one multiplexed connection.

The user's ssh setup is honoured as it is (~/.ssh/config, agent, known hosts), except that host
keys are always checked: an unknown or changed key stops the run, it is never accepted silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import IO

from wpgate.command import Command
from wpgate.config import parse_ssh_target
from wpgate.errors import TransportError
from wpgate.execute import Result, run_process
from wpgate.transports.base import Transport

CONNECTION_FAILED = 255


def host_key_problem(stderr: str) -> bool:
    return any(sign in stderr for sign in ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed",
                                            "host key is known"))


def _explain(stderr: str, where: str, *, lost: bool = False, known_hosts: list[str] | None = None,
             host: str = "") -> str:
    """One line that says why ssh could not reach the host and what to do. `known_hosts`: the files ssh
    checked the host key against, as its configuration for this host names them."""
    text = stderr.strip()
    if lost or any(sign in text for sign in ("closed by remote host", "Connection reset", "Broken pipe")):
        detail = f" ({text.splitlines()[-1]})" if text else ""
        return (f"{where}: the connection to the host was lost while a command ran{detail}: what it was doing "
                "on the host may be unfinished")
    files = known_hosts or []
    checked = f" (checked: {', '.join(files)})" if files else ""
    record = files[0] if files else "known_hosts"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        offending = next((line.split(" in ", 1)[1].strip() for line in text.splitlines()
                          if line.startswith("Offending ") and " in " in line), None)
        recorded = f" in {offending}" if offending else f" in known_hosts{checked}"
        return (f"{where}: the host key of {host or 'the host'} has CHANGED since it was recorded{recorded}: "
                f"find out why before going on (if the change is expected, update {offending or record})")
    if host_key_problem(text):
        return (f"{where}: the host key of {host or 'the host'} is not in known_hosts{checked}: check it "
                f"(ssh-keyscan, then compare fingerprints with the host's) and add it to {record}; wpgate never "
                "accepts a host key on its own")
    if "Permission denied" in text:
        return f"{where}: ssh authentication failed: check the user, key or agent for this host"
    if "Could not resolve hostname" in text:
        return f"{where}: the host name does not resolve: check `ssh:` in the config"
    if "Connection refused" in text:
        return f"{where}: connection refused: is sshd running and is the port right?"
    if "timed out" in text:
        return f"{where}: connection timed out: is the host reachable from here?"
    last = text.splitlines()[-1] if text else "ssh failed without a message"
    return f"{where}: ssh failed: {last}"


class SshTransport(Transport):
    def __init__(self, target: str, *, ssh_config: str | None = None, connect_timeout: int = 15) -> None:
        try:
            user, host, port = parse_ssh_target(target)
        except ValueError as error:
            raise TransportError(str(error)) from None
        self.destination = (f"{user}@" if user else "") + host
        self.port = str(port) if port else None
        self.ssh_config = os.path.expanduser(ssh_config) if ssh_config else None
        self.name = f"ssh {target}"
        self.connect_timeout = connect_timeout
        # A short folder for the control socket: unix socket paths are limited to ~100 bytes.
        self._control_dir: str | None = None
        self._master_started = False

    def _base(self) -> list[str]:
        argv = ["ssh"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if self.port:
            argv += ["-p", self.port]
        argv += [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ServerAliveInterval=10",
            "-o", "ServerAliveCountMax=3",
        ]
        return argv

    def known_hosts(self) -> tuple[str, list[str]]:
        """The host and port ssh checks the key of, and the known_hosts files it reads for it, as the
        user's ssh configuration has them (`ssh -G`: the configuration only, no connection)."""
        argv = ["ssh"] + (["-F", self.ssh_config] if self.ssh_config else []) + \
            (["-p", self.port] if self.port else []) + ["-G", "--", self.destination]
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            return "", []
        settings: dict[str, list[str]] = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" ")
            settings.setdefault(key.lower(), value.split())
        host = (settings.get("hostname") or [""])[0]
        port = (settings.get("port") or ["22"])[0]
        shown = host if port == "22" else f"[{host}]:{port}"
        files = [os.path.expanduser(path) for key in ("userknownhostsfile", "globalknownhostsfile")
                 for path in settings.get(key, []) if path != "/dev/null"]
        return shown, files

    def _control(self, master: str) -> list[str]:
        return ["-o", f"ControlPath={self._control_dir}/cm", "-o", f"ControlMaster={master}"]

    def _connect(self) -> None:
        """Open the one master connection that every later command of this run goes through."""
        if self._master_started:
            return
        self._control_dir = tempfile.mkdtemp(prefix="wpgate-ssh-", dir="/tmp")
        argv = self._base() + self._control("yes") + [
            "-o", "ControlPersist=yes", "-N", "-f", "-T", "--", self.destination]
        # The master forks and keeps its stderr: give it a file, not a pipe we would wait on.
        with tempfile.TemporaryFile() as errors:
            try:
                code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=errors, timeout=self.connect_timeout + 15).returncode
            except FileNotFoundError:
                self._forget_control_dir()
                raise TransportError(f"{self.name}: the OpenSSH client (ssh) is not installed") from None
            except subprocess.TimeoutExpired:
                self._forget_control_dir()
                raise TransportError(f"{self.name}: connection timed out") from None
            errors.seek(0)
            stderr = errors.read().decode("utf-8", "replace")
        if code != 0:
            self._forget_control_dir()
            if host_key_problem(stderr):
                host, files = self.known_hosts()
                raise TransportError(_explain(stderr, self.name, known_hosts=files, host=host))
            raise TransportError(_explain(stderr, self.name))
        self._master_started = True

    def run(self, command: Command, *, input: bytes | None = None, stdin: IO[bytes] | None = None,
            stdout: IO[bytes] | None = None, timeout: float | None = None) -> Result:
        self._connect()
        argv = self._base() + self._control("no") + ["-T", "--", self.destination, command.shell_line()]
        result = run_process(argv, command=command, host=self.name, input=input, stdin=stdin,
                             stdout=stdout, timeout=timeout)
        if result.returncode == CONNECTION_FAILED:
            lost = self._forget_lost_master()
            if lost or self._looks_like_ssh_failure(result.stderr):
                raise TransportError(_explain(result.stderr.decode("utf-8", "replace"), self.name, lost=lost))
        return result

    def _forget_lost_master(self) -> bool:
        """After a dropped connection the master may be gone: then the next command opens a new one
        (what rollback needs once the network is back) instead of each connecting on its own.
        Whether it was lost."""
        if not self._master_started:
            return False
        try:
            alive = subprocess.run(self._base() + self._control("no") + ["-O", "check", "--", self.destination],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=15).returncode == 0
        except (subprocess.TimeoutExpired, OSError):
            alive = False
        if not alive:
            self.close()  # asks a master that is only slow to answer to exit, then forgets its socket
        return not alive

    @staticmethod
    def _looks_like_ssh_failure(stderr: bytes) -> bool:
        text = stderr.decode("utf-8", "replace")
        return any(sign in text for sign in (
            "ssh:", "Connection closed", "Connection reset", "Broken pipe", "Host key verification failed",
            "Permission denied", "mux_client", "Control socket", "Timeout, server",
        ))

    def close(self) -> None:
        if self._master_started and self._control_dir:
            self._master_started = False
            try:
                subprocess.run(self._base() + self._control("no") + ["-O", "exit", "--", self.destination],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                pass  # the master dies with its socket folder below; nothing of the run depends on it
        self._forget_control_dir()

    def _forget_control_dir(self) -> None:
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = None
