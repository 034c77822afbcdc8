"""The hostile corpus against the installed `wpgate`, on real sites: forged and mis-signed approvals (real
ssh-keygen keys made here), artifacts swapped or broken after approval, a hard link on staging, YAML bombs
and duplicate keys, newline versions, and a CDN whose API (a local stand-in speaking Cloudflare's purge
call) echoes the credential it was sent. Each refusal leaves production as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import assert_unchanged, fingerprint, site_entry, wpgate, write_config, write_qa
from tests.support.cdn import CloudflareApi, WebhookReceiver
from wpgate import release as release_module

pytestmark = pytest.mark.e2e

OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0"}
TOKEN = "cf-echo-" + uuid.uuid4().hex
URL_PASSWORD = "pw-" + uuid.uuid4().hex
ENV = {"WPGATE_TEST_ECHO_TOKEN": TOKEN}


def keypair(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def hostile(bed, tmp_path_factory):
    """Staging ahead of production by two plugins; one plan; two configs over the same sites and state:
    `signed` names an allowed-signers file (QA Lead's key), `open` does not."""
    folder = tmp_path_factory.mktemp("hostile")
    staging = bed.create_site("hostile-staging", plugins=NEW)
    production = bed.create_site("hostile-prod", plugins=OLD)
    keys = {name: keypair(folder, name) for name in ("qa-lead", "mallory")}
    kind, blob = keys["qa-lead"].with_suffix(".pub").read_text().split()[:2]
    (folder / "allowed_signers").write_text(f'"QA Lead" {kind} {blob}\n')
    sites = {"staging": site_entry(staging), "production": site_entry(production)}
    signed = write_config(folder, sites, state_dir="state", approvers="allowed_signers")
    shutil.copy(signed, folder / "signed.yml")
    signed = folder / "signed.yml"
    opened = write_config(folder, sites, state_dir="state")
    release = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=opened)
    assert result.returncode == 0, result.stderr
    yield {"folder": folder, "signed": signed, "open": opened, "release": release, "keys": keys,
           "staging": staging, "production": production, "qa": write_qa(folder)}
    for site in (staging, production):
        site.stop()


def copy_of(hostile, name: str) -> Path:
    path = hostile["folder"] / f"{name}.yml"
    shutil.copy(hostile["release"], path)
    return path


def approve(hostile, name: str, *, by: str = "QA Lead", key: str | None = "qa-lead", config: str = "open") -> Path:
    path = copy_of(hostile, name)
    args = ["approve", str(path), "--qa", str(hostile["qa"]), "--by", by]
    if key:
        args += ["--key", str(hostile["keys"][key])]
    result = wpgate(*args, config=hostile[config])
    assert result.returncode == 0, result.stderr
    return path


def deploy(hostile, release: Path, config: str = "signed", *extra: str):
    return wpgate("deploy", str(release), "--to", "production", "--yes", *extra, config=hostile[config])


def refused_unchanged(hostile, release: Path, *fragments: str, config: str = "signed") -> dict:
    before = fingerprint(hostile["production"])
    result = deploy(hostile, release, config, "--json")
    assert result.returncode == 3, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_unchanged(before, fingerprint(hostile["production"]))
    report = json.loads(result.stdout)
    assert report["status"] == "refused" and report["gates"][0]["status"] == "failed"
    return report


def forge(release: Path, state: Path, mutate_zip) -> None:
    """What someone with write access to the manifest and the artifacts can do: a new zip for the first
    update, its sha256 in the manifest, and the digest recomputed (an unsigned approval is just a hash)."""
    manifest = yaml.safe_load(release.read_text())
    update = manifest["updates"][0]
    original = state / update["artifact"]["path"]
    forged = original.with_name("forged-" + uuid.uuid4().hex[:8] + ".zip")
    mutate_zip(original, forged)
    update["artifact"] = {"path": forged.relative_to(state).as_posix(),
                          "sha256": hashlib.sha256(forged.read_bytes()).hexdigest()}
    body = {key: manifest[key] for key in ("wpgate", "id", "staging", "updates")}
    canonical = json.dumps({"release": body, "qa": manifest["qa"]}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    manifest["approval"]["digest"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    release.write_text(yaml.safe_dump(manifest, sort_keys=False))


def rewrite(entries: dict[str, bytes] | None = None, drop: tuple[str, ...] = (), links: tuple[str, ...] = ()):
    def mutate(original: Path, forged: Path) -> None:
        with zipfile.ZipFile(original) as source, zipfile.ZipFile(forged, "w") as target:
            for info in source.infolist():
                if info.filename not in drop:
                    target.writestr(info, source.read(info))
            for name, data in (entries or {}).items():
                target.writestr(name, data)
            for name in links:
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                target.writestr(info, "/etc/passwd")
    return mutate


# --- signed approvals -----------------------------------------------------------------------------------

def test_a_signed_approval_by_a_listed_approver_passes_gate_6_1(hostile):
    release = approve(hostile, "signed-ok")
    manifest = yaml.safe_load(release.read_text())
    assert manifest["approval"]["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
    result = deploy(hostile, release, "signed", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    gate = json.loads(result.stdout)["gates"][0]
    assert gate["status"] == "passed" and gate["evidence"]["signed"] is True
    assert gate["evidence"]["signature"].startswith("verified: QA Lead's key ED25519 SHA256:")
    assert "verified: QA Lead's key" in result.stderr


def test_a_swapped_zip_with_its_digest_recomputed_is_refused_when_approvals_are_signed(hostile):
    release = approve(hostile, "swapped")
    evil = b"<?php\n/*\nPlugin Name: Hello\nVersion: 1.2.0\n*/\nfile_put_contents(__DIR__.'/pwned', 'x');\n"
    forge(release, hostile["folder"] / "state", rewrite({"wpgate-hello/wpgate-hello.php": evil},
                                                         drop=("wpgate-hello/wpgate-hello.php",)))
    assert release_module.load(release).digest() == yaml.safe_load(release.read_text())["approval"]["digest"]
    refused_unchanged(hostile, release, "signature does not verify for 'QA Lead'", "over another digest")


@pytest.mark.parametrize("how", ["unsigned", "unlisted-key", "unlisted-principal"])
def test_an_approval_not_signed_by_a_listed_approver_is_refused(hostile, how):
    by, key = {"unsigned": ("QA Lead", None), "unlisted-key": ("QA Lead", "mallory"),
               "unlisted-principal": ("Mallory", "qa-lead")}[how]
    release = approve(hostile, how, by=by, key=key)  # under the config without approvers
    expected = {"unsigned": ["is not signed"],
                "unlisted-key": ["does not verify", "the key that signed is not listed there"],
                "unlisted-principal": ["does not verify", "listed there for QA Lead, not for 'Mallory'"]}[how]
    refused_unchanged(hostile, release, *expected)


def test_approve_refuses_to_write_an_approval_deploy_would_refuse(hostile):
    release = copy_of(hostile, "refused-at-approve")
    result = wpgate("approve", str(release), "--qa", str(hostile["qa"]), "--by", "QA Lead", config=hostile["signed"])
    assert result.returncode == 2 and "requires signed approvals: approve with --key" in result.stderr
    result = wpgate("approve", str(release), "--qa", str(hostile["qa"]), "--by", "QA Lead",
                    "--key", str(hostile["keys"]["mallory"]), config=hostile["signed"])
    assert result.returncode == 3 and "approval refused" in result.stderr, result.stderr
    assert "approval" not in yaml.safe_load(release.read_text())


def test_without_approvers_the_output_and_the_report_say_the_approval_is_unsigned(hostile):
    release = approve(hostile, "unsigned-open", key=None)
    result = deploy(hostile, release, "open", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert "unsigned: the config names no approvers file" in result.stderr
    gate = json.loads(result.stdout)["gates"][0]
    assert gate["evidence"]["signed"] is False and gate["evidence"]["signature"].startswith("unsigned")


# --- broken artifacts are refused at gate 6.1, before any change ---------------------------------------

@pytest.mark.parametrize("mutate,expected", [
    (rewrite({"wpgate-hello/../../../wp-config-evil.php": b"<?php"}), "outside its wpgate-hello/ folder"),
    (rewrite({"wpgate-other/x.php": b"<?php"}), "outside its wpgate-hello/ folder"),
    (rewrite(links=("wpgate-hello/passwd",)), "is a symbolic link"),
    (lambda original, forged: forged.write_bytes(b"PK\x03\x04 not a zip"), "not a readable zip archive"),
], ids=["dot-dot", "wrong-top", "symlink", "not-a-zip"])
def test_a_broken_artifact_is_refused_at_gate_6_1(hostile, mutate, expected):
    release = approve(hostile, "broken-" + uuid.uuid4().hex[:6], key=None)
    forge(release, hostile["folder"] / "state", mutate)
    report = refused_unchanged(hostile, release, expected, config="open")
    assert report["gates"][0]["step"] == "6.1"
    assert [gate["step"] for gate in report["gates"]] == ["6.1"]


# --- staging: hard links and private files ------------------------------------------------------------

def test_a_hard_link_on_staging_is_refused_and_a_private_file_stays_private(hostile):
    plugin = Path(hostile["staging"].path) / "wp-content" / "plugins" / "wpgate-notes"
    secret = hostile["folder"] / "outside-wordpress.txt"
    secret.write_text("DB_PASSWORD=hunter2\n")
    secret.chmod(0o600)
    linked = plugin / "notes-cache.txt"
    os.link(secret, linked)
    try:
        result = wpgate("plan", "--from", "staging", "--to", "production", "-o",
                        str(hostile["folder"] / "linked.yml"), config=hostile["open"])
        assert result.returncode == 2 and "more than one hard link" in result.stderr, result.stderr
    finally:
        linked.unlink()
    private = plugin / "private-settings.php"
    private.write_text("<?php // private\n")
    private.chmod(0o600)
    try:
        out = hostile["folder"] / "private.yml"
        result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(out), config=hostile["open"])
        assert result.returncode == 0, result.stderr
        notes = [u for u in yaml.safe_load(out.read_text())["updates"] if u["slug"] == "wpgate-notes"][0]
        with zipfile.ZipFile(hostile["folder"] / "state" / notes["artifact"]["path"]) as archive:
            modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
        assert modes["wpgate-notes/private-settings.php"] == 0o600
    finally:
        private.unlink()


# --- YAML and text limits through the command -----------------------------------------------------------

BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)))


def one_quick_exit_2(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and len(result.stderr) < 4000
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_hostile_yaml_is_bad_input_exit_2(hostile):
    folder = hostile["folder"]
    bomb = folder / "bomb.yml"
    bomb.write_text(hostile["release"].read_text() + BOMB)
    one_quick_exit_2(deploy(hostile, bomb, "open"), "aliases (*name) are not allowed")
    nested = folder / "nested-qa.yml"
    nested.write_text("checks: " + "[" * 40_000 + "]" * 40_000 + "\n")
    one_quick_exit_2(wpgate("approve", str(copy_of(hostile, "nested")), "--qa", str(nested), "--by", "A",
                            config=hostile["open"]), "nest")
    huge = folder / "huge-qa.yml"
    huge.write_text("checks:\n" + "  - {name: x, required: true, status: passed}\n" * 30_000)
    one_quick_exit_2(wpgate("approve", str(copy_of(hostile, "huge")), "--qa", str(huge), "--by", "A",
                            config=hostile["open"]), "larger than 1 MB")
    twice = folder / "twice-qa.yml"
    twice.write_text("checks:\n  - {name: checkout works, required: true, status: failed}\n"
                     "checks:\n  - {name: checkout works, required: true, status: passed}\n")
    release = copy_of(hostile, "twice")
    one_quick_exit_2(wpgate("approve", str(release), "--qa", str(twice), "--by", "A", config=hostile["open"]),
                     "duplicate key 'checks'")
    assert "approval" not in yaml.safe_load(release.read_text())
    newline = folder / "newline.yml"
    manifest = yaml.safe_load(hostile["release"].read_text())
    manifest["updates"][0]["to"] += "\n"
    newline.write_text(yaml.safe_dump(manifest, sort_keys=False))
    one_quick_exit_2(deploy(hostile, newline, "open"), "is not a WordPress version string")


# --- a CDN that echoes the credential -------------------------------------------------------------------

def test_a_credential_echoed_by_a_cdn_never_leaves_wpgate(hostile, bed):
    with CloudflareApi(TOKEN) as api, WebhookReceiver("") as hook:
        # A purge webhook whose URL carries its own credentials (sent as Basic authorization).
        hook_url = hook.url.replace("http://", f"http://wpgate:{URL_PASSWORD}@") + "/purge"
        entry = site_entry(hostile["production"], caches=[
            {"cloudflare": {"zone": "zone123", "token_env": "WPGATE_TEST_ECHO_TOKEN", "api": api.api}},
            {"webhook": {"url": hook_url}}])
        folder = hostile["folder"] / "echo"
        folder.mkdir()
        config = write_config(folder, {"staging": site_entry(hostile["staging"]), "production": entry},
                              state_dir=str(hostile["folder"] / "state"))
        release = approve(hostile, "echo", key=None)
        api.misbehave("echo-403")
        purge = wpgate("purge", "production", "--json", config=config, env=ENV)
        assert purge.returncode == 3 and "answered 403: Forbidden: invalid credentials" in purge.stderr, purge.stderr
        api.misbehave("echo-403")  # the gate's purge; the rollback's purge then passes
        result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config, env=ENV)
        assert result.returncode in (4, 5), result.stderr
        assert "answered 403" in result.stderr
        assert any(TOKEN in request.headers.get("authorization", "") for request in api.requests)
        assert any(request.headers.get("authorization", "").startswith("Basic ") for request in hook.requests)
    report = json.loads(result.stdout)
    run = hostile["folder"] / "state" / "runs" / report["run"]
    markdown = wpgate("report", report["run"], config=config, env=ENV)
    assert markdown.returncode == 0, markdown.stderr
    html = folder / "report.html"
    assert wpgate("report", report["run"], "--html", str(html), config=config, env=ENV).returncode == 0
    texts = {"purge stderr": purge.stderr, "purge stdout": purge.stdout, "deploy stderr": result.stderr,
             "deploy --json": result.stdout, "journal.jsonl": (run / "journal.jsonl").read_text(),
             "report.json": (run / "report.json").read_text(), "markdown report": markdown.stdout,
             "html report": html.read_text()}
    for name, text in texts.items():
        assert TOKEN not in text, f"the token leaked into {name}"
        assert URL_PASSWORD not in text, f"the URL's password leaked into {name}"
    assert "***" in result.stderr and "***" in texts["journal.jsonl"]
    assert "http://***@127.0.0.1" in texts["report.json"]  # the webhook's URL, as the rollback's purge ran it


def test_a_sites_url_credentials_are_masked(hostile):
    site = hostile["production"]
    url = site.url.replace("http://", f"http://monitor:{URL_PASSWORD}@")
    folder = hostile["folder"] / "url-credentials"
    folder.mkdir()
    config = write_config(folder, {"production": site_entry(site, url=url)}, state_dir="state")
    result = wpgate("check", "production", "--json", config=config)
    assert result.returncode in (0, 3), result.stderr
    assert URL_PASSWORD not in result.stdout + result.stderr
    assert "monitor:***@" in result.stdout + result.stderr or "***@" in result.stdout + result.stderr
