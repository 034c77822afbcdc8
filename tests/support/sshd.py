"""An sshd on loopback with throwaway keys, and the client config that reaches it: a test bed's (`sshd(bed)`),
started on first use and stopped with the bed. Only the tests use it: the demo and bench/ reach sites locally."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from wpgate.testbed import TestBed
from wpgate.testbed.process import ManagedProcess, _children_of, free_port, run

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and insists on an absolute path


def _quoted(path: Path) -> str:
    return '"' + str(path) + '"'


class SshServer:
    """`ssh -F config_path wpgate-test COMMAND` runs COMMAND as root on this machine.

    The host key is pinned in `known_hosts_path` and the client key is the only one
    sshd accepts, so the test bed neither reads nor changes root's own ~/.ssh.
    """

    alias = "wpgate-test"
    user = "root"
    host = "127.0.0.1"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.host_key_path = workdir / "ssh_host_ed25519_key"
        self.identity_path = workdir / "id_ed25519"
        self.authorized_keys_path = workdir / "authorized_keys"
        self.known_hosts_path = workdir / "known_hosts"
        self.sshd_config_path = workdir / "sshd_config"
        self.config_path = workdir / "ssh_config"
        self.log_path = workdir / "sshd.log"
        self.process: ManagedProcess | None = None

    @property
    def destination(self) -> str:
        """`user@host:port`, as wpgate.yml's `ssh:` key writes it."""
        return f"{self.user}@{self.host}:{self.port}"

    def ssh_argv(self, *command: str) -> list[str]:
        """ssh through this server's client config: `ssh -F CONFIG wpgate-test COMMAND...`."""
        return ["ssh", "-F", str(self.config_path), self.alias, *command]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)
        for key in (self.host_key_path, self.identity_path):
            if not key.exists():
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wpgate-test-bed",
                     "-f", str(key)], what="ssh-keygen")
        self.authorized_keys_path.write_text(
            Path(f"{self.identity_path}.pub").read_text())
        host_public_key = " ".join(Path(f"{self.host_key_path}.pub").read_text().split()[:2])
        self.known_hosts_path.write_text(f"[{self.host}]:{self.port} {host_public_key}\n")
        # sshd's privilege separation needs this folder; systemd makes it on real hosts.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self.sshd_config_path.write_text("\n".join([
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            # bash sources ~/.bashrc for a command sshd starts only in a top-level shell: this makes
            # it a nested one, so the account's shell setup (a pyenv rehash, say, whose lock a test
            # that cuts connections can leave behind) never runs in the test bed's sessions.
            "SetEnv SHLVL=1",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding yes",
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
            "",
        ]))
        self.config_path.write_text("\n".join([
            f"Host {self.alias}",
            f"    HostName {self.host}",
            f"    Port {self.port}",
            f"    User {self.user}",
            f"    IdentityFile {_quoted(self.identity_path)}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {_quoted(self.known_hosts_path)}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    LogLevel ERROR",
            "    ConnectTimeout 10",
            "",
        ]))
        self.process = ManagedProcess("sshd", [
            SSHD, "-D", "-e", "-f", str(self.sshd_config_path), "-p", str(self.port),
        ], log_path=self.log_path)
        self.process.start()
        self.process.wait_for_port(self.port)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def drop_connections(self) -> int:
        """Cut every open connection as a network failure would (SIGKILL to each session process and
        what it runs); the server goes on listening. How many processes were killed."""
        killed = 0
        if self.process and self.process.pid:
            for pid in reversed(_children_of(self.process.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed

    @property
    def pids(self) -> set[int]:
        return set(self.process.pids_seen) if self.process else set()


def sshd(bed: TestBed) -> SshServer:
    """The bed's sshd on loopback, started on first use (the same one each time), stopped when the bed closes."""
    return bed.service("sshd", lambda: SshServer(bed.root / "sshd"))
