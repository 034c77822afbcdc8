"""The local and ssh transports against a real sshd: commands as argument lists, large files streamed, one
connection per run, secrets masked in every log line."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from tests.e2e.helpers import site_entry, wpgate, write_config
from tests.support.sshd import sshd
from wpgate.command import Command, Secret
from wpgate.errors import TransportError
from wpgate.transports import LocalTransport, SshTransport

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ssh(bed):
    return sshd(bed)


@pytest.fixture(params=["local", "ssh"])
def transport(request, ssh):
    if request.param == "local":
        chosen = LocalTransport()
    else:
        chosen = SshTransport(ssh.alias, ssh_config=str(ssh.config_path))
    with chosen:
        yield chosen


def test_hostile_words_reach_the_program_unchanged(transport):
    words = ["a b", "$(id)", "`id`", "x;y", "'q'", '"d"', "*", "\\", "-n"]
    result = transport.check(Command.of("printf", "%s\\n", *words))
    assert result.text().splitlines() == words


def test_large_files_stream_both_ways_intact(transport, tmp_path):
    source = tmp_path / "big.bin"
    with open(source, "wb") as handle:
        for _ in range(40):
            handle.write(os.urandom(1 << 20))
    remote = str(tmp_path / "uploaded.bin")
    transport.upload(source, remote)
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert transport.sha256(remote) == expected
    back = tmp_path / "downloaded.bin"
    transport.download(remote, back)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == expected
    assert not (tmp_path / "uploaded.bin.part").exists() and not (tmp_path / "downloaded.bin.part").exists()


def test_a_failing_command_is_reported_with_its_error(transport, tmp_path):
    with pytest.raises(TransportError, match="No such file"):
        transport.check(Command.of("cat", "--", str(tmp_path / "absent")))


def test_secrets_are_masked_in_log_lines(transport, caplog):
    caplog.set_level("DEBUG", logger="wpgate.execute")
    result = transport.run(Command.of("sh", "-c", 'printf "%s" "$1" | wc -c', "sh", Secret("s3cr3t-value")))
    assert result.text().strip() == "12"  # the real value reached the program
    assert "s3cr3t-value" not in caplog.text
    assert "***" in caplog.text


def test_one_connection_serves_a_whole_command(bed, ssh, tmp_path):
    site = bed.create_site("transport-ssh", core="6.5.5")
    config = write_config(tmp_path, {"site": site_entry(site, ssh=ssh)})
    accepted_before = ssh.log_path.read_text().count("Accepted publickey")
    for _ in range(2):
        result = wpgate("-v", "inventory", "site", config=config)
        assert result.returncode == 0, result.stderr
    # Two commands, each with several remote commands, each one ssh connection.
    assert ssh.log_path.read_text().count("Accepted publickey") - accepted_before == 2
    assert "run on ssh wpgate-test: php" in result.stderr
    site.stop()


def test_the_master_connection_is_closed_afterwards(ssh):
    transport = SshTransport(ssh.alias, ssh_config=str(ssh.config_path))
    transport.check(Command.of("true"))
    control = transport._control_dir
    assert control and os.path.exists(f"{control}/cm")
    transport.close()
    assert not os.path.exists(control)
    masters = subprocess.run(["pgrep", "-f", f"ControlPath={control}"], capture_output=True, text=True)
    assert masters.stdout.strip() == ""


def test_a_changed_host_key_stops_everything(ssh, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    key = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    del key
    other = (tmp_path / "k.pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{ssh.port} {' '.join(other)}\n")
    config = tmp_path / "ssh_config"
    config.write_text(ssh.config_path.read_text().replace(str(ssh.known_hosts_path), str(known_hosts)))
    with pytest.raises(TransportError, match="CHANGED"):
        SshTransport(ssh.alias, ssh_config=str(config)).check(Command.of("true"))
    assert known_hosts.read_text().count("\n") == 1


def test_an_unknown_host_key_names_the_known_hosts_file_it_checked(ssh, tmp_path):
    """A host key missing from known_hosts: the one line names the host and port and the file ssh read
    (the config's UserKnownHostsFile), so that the user knows where to add it; nothing is accepted."""
    known_hosts = tmp_path / "empty_known_hosts"
    known_hosts.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(ssh.config_path.read_text().replace(str(ssh.known_hosts_path), str(known_hosts)))
    with pytest.raises(TransportError) as raised:
        SshTransport(ssh.alias, ssh_config=str(config)).check(Command.of("true"))
    message = str(raised.value)
    assert f"the host key of [127.0.0.1]:{ssh.port} is not in known_hosts (checked: {known_hosts})" in message
    assert f"add it to {known_hosts}" in message and "\n" not in message
    assert known_hosts.read_text() == ""


def test_a_changed_host_key_names_the_line_that_holds_the_old_one(ssh, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    other = (tmp_path / "k.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{ssh.port} {' '.join(other)}\n")
    config = tmp_path / "ssh_config"
    config.write_text(ssh.config_path.read_text().replace(str(ssh.known_hosts_path), str(known_hosts)))
    with pytest.raises(TransportError) as raised:
        SshTransport(ssh.alias, ssh_config=str(config)).check(Command.of("true"))
    assert f"has CHANGED since it was recorded in {known_hosts}" in str(raised.value)
