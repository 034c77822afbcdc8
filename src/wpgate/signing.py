"""Signed approvals: OpenSSH signatures (`ssh-keygen -Y`, the scheme git uses) over a release's digest.

`wpgate approve --key KEY` signs the approval's digest (the text `sha256:…`, no newline) in the
namespace `wpgate-release`, as the approver named by `--by`. With `approvers` in the config (an
OpenSSH allowed-signers file), gate 6.1 refuses an approval that is unsigned, signed by a key or
principal the file does not allow, or signed over another digest. By hand, the same check is:

    printf %s "$DIGEST" | ssh-keygen -Y verify -f allowed_signers -I NAME -n wpgate-release -s approval.sig
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wpgate.command import Command
from wpgate.errors import BadInput, GateRefused
from wpgate.execute import run_process

NAMESPACE = "wpgate-release"
_ARMOUR = re.compile(r"-----BEGIN SSH SIGNATURE-----\n[A-Za-z0-9+/=\n]+-----END SSH SIGNATURE-----\n?")
_KEY = re.compile(r"with (\S+) key (SHA256:[A-Za-z0-9+/=]+)")


@dataclass(frozen=True)
class Verified:
    principal: str
    key: str  # "ED25519 SHA256:…": which key signed


def sign(digest: str, key: Path, principal: str) -> str:
    """The armoured signature of `digest` by `key` (a private key, or a public key whose private half
    ssh-agent holds). ssh-keygen asks for a passphrase on the terminal itself: nothing secret is
    ever on a command line."""
    if not key.is_file():
        raise BadInput(f"--key {key}: no such key file")
    with tempfile.TemporaryDirectory(prefix="wpgate-sign-") as folder:
        message = Path(folder) / "digest"
        message.write_text(digest, encoding="utf-8")
        try:
            # Run directly, in this terminal's session: a passphrase prompt must reach the person.
            done = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        except FileNotFoundError:
            raise BadInput("ssh-keygen is not installed (OpenSSH's client tools sign approvals)") from None
        except subprocess.TimeoutExpired:
            raise BadInput(f"--key {key}: ssh-keygen did not sign within 5 minutes") from None
        signature = Path(folder) / "digest.sig"
        if done.returncode != 0 or not signature.is_file():
            said = " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"
            raise BadInput(f"--key {key}: ssh-keygen could not sign the approval: {said}")
        return signature.read_text(encoding="ascii")


def verify(digest: str, signature: str | None, principal: str, allowed_signers: Path) -> Verified:
    """Prove `signature` is `principal`'s, by a key `allowed_signers` lists for them, over `digest`;
    else GateRefused saying which of those does not hold."""
    if not signature:
        raise GateRefused(f"the approval by {principal} is not signed, and the config's approvers "
                          f"({allowed_signers}) requires a signature: approve with --key")
    if not _ARMOUR.fullmatch(signature.strip() + "\n"):
        raise GateRefused("the approval's signature is not an OpenSSH signature (approval.signature)")
    with tempfile.TemporaryDirectory(prefix="wpgate-verify-") as folder:
        signature_file = Path(folder) / "approval.sig"
        signature_file.write_text(signature.strip() + "\n", encoding="ascii")
        command = Command.of("ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                             "-n", NAMESPACE, "-s", str(signature_file))
        result = run_process(command.real_argv(), command=command, host="this machine",
                             input=digest.encode("utf-8"), timeout=60)
        said = " ".join((result.stdout + result.stderr).decode("utf-8", "replace").split())
        if not result.ok:
            why = _why_not(signature_file, principal, allowed_signers)
            raise GateRefused(f"the approval's signature does not verify for {principal!r} against the config's "
                              f"approvers ({allowed_signers}): {why}; "
                              f"ssh-keygen: {said or 'exit status %d' % result.returncode}")
    found = _KEY.search(said)
    return Verified(principal, f"{found.group(1)} {found.group(2)}" if found else "")


def _why_not(signature_file: Path, principal: str, allowed_signers: Path) -> str:
    """Which part of a failed verification failed: the signing key is not in the file, it is there under
    other principals than the approver's name, or (key and name allowed) the signed digest is another."""
    command = Command.of("ssh-keygen", "-Y", "find-principals", "-f", str(allowed_signers), "-s", str(signature_file))
    result = run_process(command.real_argv(), command=command, host="this machine", timeout=60)
    listed = result.stdout.decode("utf-8", "replace").splitlines() if result.ok else []
    principals = [name.strip() for line in listed for name in line.split(",") if name.strip()]
    if not principals:
        return "the key that signed is not listed there"
    if not any(fnmatch.fnmatchcase(principal, pattern) for pattern in principals):  # the file may hold patterns
        return (f"the key that signed is listed there for {', '.join(principals)}, not for {principal!r} "
                "(approve with --by naming its principal)")
    return "signed over another digest: the release or an artifact changed after approval"
