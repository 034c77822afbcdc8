"""The hostile corpus, below the command line: YAML bombs and duplicate keys, newline-suffixed ids and
versions, broken artifact zips, hard links and private files on staging, forged and mis-signed approvals
(real keys made with ssh-keygen), secrets that an API echoes back, and where tracebacks go."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from wpgate import artifacts, cli, config, qa, redact, release as release_module, signing, yamlfile
from wpgate.command import Secret
from wpgate.errors import BadInput, GateRefused, WpgateError, listing
from wpgate.inventory import Inventory
from wpgate.run import Run, load_report
from wpgate.transports.local import LocalTransport

SHA = "a" * 64
MANIFEST = ("wpgate: 1\nid: 2026-11-26-1\nstaging: {site: staging, url: http://staging.test}\nupdates:\n"
            "  - {type: plugin, slug: hello, from: '1.0', to: '1.1', artifact: {path: artifacts/hello.zip, "
            f"sha256: '{SHA}'}}}}\n")
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)))


def refused_quickly(load, path: Path, *fragments: str) -> str:
    started = time.monotonic()
    with pytest.raises(BadInput) as refused:
        load(path)
    assert time.monotonic() - started < 5, "a hostile file must be refused before it is built"  # generous
    text = str(refused.value)
    assert len(text) < 2000, text[:300]
    for fragment in fragments:
        assert fragment in text, text
    return text


# --- YAML limits (#7) and duplicate keys (#8) ---------------------------------------------------------

@pytest.mark.parametrize("load", [release_module.load, qa.load], ids=["manifest", "qa"])
def test_an_alias_bomb_is_refused_unbuilt(tmp_path, load):
    path = tmp_path / "hostile.yml"
    path.write_text(MANIFEST + BOMB if load is release_module.load else "checks: []\n" + BOMB)
    refused_quickly(load, path, "aliases (*name) are not allowed")


@pytest.mark.parametrize("load", [release_module.load, qa.load], ids=["manifest", "qa"])
def test_nested_brackets_are_refused_without_a_recursion_error(tmp_path, load):
    path = tmp_path / "hostile.yml"
    path.write_text("checks: " + "[" * 40_000 + "]" * 40_000 + "\n")
    refused_quickly(load, path, "nest")
    path.write_text("checks:\n" + "".join("  " * depth + f"- k{depth}:\n" for depth in range(1, 40)))
    refused_quickly(load, path, "nested deeper than 16 levels")


@pytest.mark.parametrize("load", [release_module.load, qa.load, config.load], ids=["manifest", "qa", "config"])
def test_a_file_over_a_megabyte_is_refused_unread(tmp_path, load):
    path = tmp_path / "hostile.yml"
    path.write_text("checks:\n" + "  - {name: x, status: passed}\n" * 50_000)
    assert path.stat().st_size > 1 << 20
    refused_quickly(load, path, "larger than 1 MB")


def test_a_file_of_many_small_values_is_refused_at_the_value_limit(tmp_path):
    path = tmp_path / "qa.yml"
    path.write_text("checks: [" + ",".join(["x"] * 200_000) + "]\n")
    assert path.stat().st_size < 1 << 20
    refused_quickly(qa.load, path, f"holds more than {yamlfile.MAX_VALUES} values")


def test_a_manifest_with_thousands_of_problems_lists_the_first_twenty(tmp_path):
    path = tmp_path / "release.yml"
    bad = "  - {type: plugin, slug: 'Bad Slug', from: '1.0', to: '1.1', artifact: {path: a.zip, sha256: x}}\n"
    path.write_text(MANIFEST.split("updates:\n")[0] + "updates:\n" + bad * 2000)
    text = refused_quickly(release_module.load, path, "… and ")
    assert text.count("\n  - ") == 20


def test_problem_lines_are_shortened():
    text = listing(["x" * 100_000, "y"])
    assert len(text) < 1000


def test_duplicate_keys_are_an_error_in_a_qa_record(tmp_path):
    path = tmp_path / "qa.yml"
    path.write_text("checks:\n  - {name: checkout works, required: true, status: failed}\n"
                    "checks:\n  - {name: checkout works, required: true, status: passed}\n")
    refused_quickly(qa.load, path, "duplicate key 'checks' (first at line 1)")
    path.write_text("checks:\n  - {name: checkout works, status: failed, status: passed}\n")
    refused_quickly(qa.load, path, "duplicate key 'status'")


def test_duplicate_keys_are_an_error_in_a_manifest_and_the_config(tmp_path):
    path = tmp_path / "release.yml"
    path.write_text(MANIFEST + "id: another\n")
    refused_quickly(release_module.load, path, "duplicate key 'id'")
    path = tmp_path / "wpgate.yml"
    path.write_text("sites:\n  a: {path: /srv/a, url: http://a.test}\nsites:\n  b: {path: /srv/b, url: http://b.test}\n")
    refused_quickly(config.load, path, "duplicate key 'sites'")


def test_the_config_may_share_settings_through_anchors_but_not_explode(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text("sites:\n  a: &site {path: /srv/a, url: http://a.test, checks: &checks {pages: [/, /shop/]}}\n"
                    "  b: {path: /srv/b, url: http://b.test, checks: *checks}\n")
    settings = config.load(path)
    assert settings.site("b").checks.pages == ["/", "/shop/"]
    path.write_text("sites: {}\n" + BOMB)
    refused_quickly(config.load, path, "through its aliases", "an alias bomb?")


# --- full matches (#10) -------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("to", "1.1\n"), ("from", "1.0\n"), ("slug", "hello\n"),
                                         ("id", "2026-11-26-1\n"), ("sha256", SHA + "\n")])
def test_a_trailing_newline_does_not_pass_for_an_id_or_version(tmp_path, field, value):
    text = MANIFEST
    old = {"to": "to: '1.1'", "from": "from: '1.0'", "slug": "slug: hello", "id": "id: 2026-11-26-1",
           "sha256": f"sha256: '{SHA}'"}[field]
    text = text.replace(old, f"{old.split(':')[0]}: {json.dumps(value)}")
    path = tmp_path / "release.yml"
    path.write_text(text)
    refused_quickly(release_module.load, path, field)


def test_run_and_backup_ids_with_a_newline_are_refused(tmp_path):
    with pytest.raises(BadInput, match="not a run id"):
        load_report(tmp_path, "20261126-101500-ab12\n")
    from wpgate.backup import model

    assert model.site_of("production-20261126-101500-ab12") == "production"
    with pytest.raises(BadInput):
        model.site_of("production-20261126-101500-ab12\n")


def test_config_names_and_urls_with_a_newline_are_refused(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text('sites:\n  a: {path: /srv/a, url: "http://a.test\\n/x"}\n'
                    '  b: {path: /srv/b, url: http://b.test, caches: [{cloudflare: {zone: z, token_env: "T\\n"}}]}\n')
    text = refused_quickly(config.load, path)
    assert "sites.a.url" in text and "is not an http(s) URL" in text and "environment variable name" in text
    path.write_text('sites:\n  "a\\n": {path: /srv/a, url: "http://a.test"}\n')
    refused_quickly(config.load, path, "site name")


def test_state_dir_naming_a_file_is_a_config_error(tmp_path):
    (tmp_path / "state").write_text("not a folder")
    path = tmp_path / "wpgate.yml"
    path.write_text("state_dir: state/sub\nsites:\n  a: {path: /srv/a, url: http://a.test}\n")
    refused_quickly(config.load, path, "state_dir:", "which is a file")
    path.write_text("state_dir: state\nsites:\n  a: {path: /srv/a, url: http://a.test}\n")
    refused_quickly(config.load, path, "state_dir:", "is a file, not a folder")


# --- artifact structure at gate 6.1 (#10) -------------------------------------------------------------

PLUGIN = "<?php\n/*\nPlugin Name: Hello\nVersion: 1.1\n*/\n"


def make_zip(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_a_well_formed_plugin_artifact_passes(tmp_path):
    good = make_zip(tmp_path / "good.zip", {"hello/": b"", "hello/hello.php": PLUGIN.encode()})
    assert artifacts.structure_problems(good, "plugin", "hello", "1.1") == []


@pytest.mark.parametrize("entries,links,expected", [
    ({"hello/hello.php": PLUGIN.encode(), "hello/../../evil.php": b"<?php"}, (), "outside its hello/ folder"),
    ({"other/hello.php": PLUGIN.encode()}, (), "outside its hello/ folder"),
    ({"hello/hello.php": PLUGIN.encode(), "/etc/cron.d/x": b""}, (), "outside its hello/ folder"),
    ({"hello/hello.php": PLUGIN.encode()}, ("hello/passwd",), "is a symbolic link"),
    ({"hello/hello.php": PLUGIN.replace("1.1", "6.6.6").encode()}, (), "holds version 6.6.6, not 1.1"),
    ({"hello/readme.txt": b"no plugin here"}, (), "no PHP file with a Plugin Name header"),
    ({}, (), "empty zip archive"),
], ids=["dot-dot", "wrong-top", "absolute", "symlink", "version", "no-plugin", "empty"])
def test_a_broken_plugin_artifact_is_named(tmp_path, entries, links, expected):
    broken = make_zip(tmp_path / "broken.zip", entries, links)
    problems = artifacts.structure_problems(broken, "plugin", "hello", "1.1")
    assert problems and expected in "\n".join(problems), problems


def test_a_file_that_is_not_a_zip_is_named(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    assert "not a readable zip archive" in artifacts.structure_problems(path, "plugin", "hello", "1.1")[0]


CORE = {"wordpress/wp-includes/version.php": b"<?php\n$wp_version = '6.2.6';\n",
        "wordpress/readme.html": b"", "wordpress/wp-admin/includes/update-core.php": b"<?php\n"}


@pytest.mark.parametrize("extra,expected", [
    ({}, None),
    ({"wordpress/wp-config.php": b"<?php // someone else's"}, "holds wp-config.php"),
    ({"wordpress/wp-content/plugins/evil/evil.php": b"<?php"}, "holds wp-content/plugins/evil/evil.php"),
])
def test_a_core_artifact_holds_core_only(tmp_path, extra, expected):
    path = make_zip(tmp_path / "core.zip", {**CORE, **extra})
    problems = artifacts.structure_problems(path, "core", "wordpress", "6.2.6")
    if expected is None:
        assert problems == []
    else:
        assert expected in "\n".join(problems), problems


def test_a_theme_artifact_needs_its_style_sheet(tmp_path):
    path = make_zip(tmp_path / "theme.zip", {"blue/style.css": b"/*\nTheme Name: Blue\nVersion: 2.0\n*/"})
    assert artifacts.structure_problems(path, "theme", "blue", "2.0") == []
    path = make_zip(tmp_path / "theme.zip", {"blue/index.php": b"<?php"})
    assert "style.css" in artifacts.structure_problems(path, "theme", "blue", "2.0")[0]


# --- hard links and modes when capturing (#4) ---------------------------------------------------------

def staging_tree(tmp_path: Path) -> tuple[Path, Inventory]:
    plugins = tmp_path / "wp-content" / "plugins"
    (plugins / "hello").mkdir(parents=True)
    (plugins / "hello" / "hello.php").write_text(PLUGIN)
    return plugins, Inventory({"paths": {"plugins": str(plugins), "themes": str(tmp_path / "themes"),
                                         "abspath": str(tmp_path)}})


def test_a_hard_linked_file_in_a_component_is_refused(tmp_path):
    plugins, inventory = staging_tree(tmp_path)
    secret = tmp_path / "private.txt"
    secret.write_text("DB_PASSWORD=hunter2")
    secret.chmod(0o600)
    os.link(secret, plugins / "hello" / "notes.txt")
    state = tmp_path / "state"
    with pytest.raises(WpgateError, match="more than one hard link"):
        artifacts.capture(LocalTransport(), inventory, "plugin", "hello", "1.1", state / "artifacts", state)
    assert not list((state / "artifacts").glob("*.zip")) if (state / "artifacts").exists() else True


def test_packing_never_widens_a_files_mode(tmp_path):
    plugins, inventory = staging_tree(tmp_path)
    private = plugins / "hello" / "settings.php"
    private.write_text("<?php // private")
    private.chmod(0o600)
    (plugins / "hello" / "tool.sh").write_text("#!/bin/sh\n")
    (plugins / "hello" / "tool.sh").chmod(0o777)
    state = tmp_path / "state"
    capture = artifacts.capture(LocalTransport(), inventory, "plugin", "hello", "1.1", state / "artifacts", state)
    with zipfile.ZipFile(capture.file) as archive:
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert modes["hello/settings.php"] == 0o600
    assert modes["hello/hello.php"] == 0o644
    assert modes["hello/tool.sh"] == 0o644  # never wider than 0644 either
    assert artifacts.structure_problems(capture.file, "plugin", "hello", "1.1") == []


# --- signed approvals (#2), with real ssh-keygen keys ------------------------------------------------

def keypair(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def allowed_signers(folder: Path, **principals: Path) -> Path:
    path = folder / "allowed_signers"
    lines = []
    for principal, key in principals.items():
        kind, blob = (key.with_suffix(".pub").read_text().split()[:2])
        lines.append(f'"{principal.replace("_", " ")}" {kind} {blob}')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    ana, mallory = keypair(folder, "ana"), keypair(folder, "mallory")
    return {"folder": folder, "ana": ana, "mallory": mallory, "allowed": allowed_signers(folder, QA_Lead=ana)}


DIGEST = "sha256:" + "b" * 64


def test_a_signature_by_a_listed_key_and_principal_verifies(keys):
    signature = signing.sign(DIGEST, keys["ana"], "QA Lead")
    assert signature.startswith("-----BEGIN SSH SIGNATURE-----")
    verified = signing.verify(DIGEST, signature, "QA Lead", keys["allowed"])
    assert verified.principal == "QA Lead" and verified.key.startswith("ED25519 SHA256:")


@pytest.mark.parametrize("case", ["unsigned", "other-key", "other-principal", "other-digest", "other-namespace",
                                  "garbage"])
def test_a_forged_or_mis_signed_approval_is_refused(keys, case, tmp_path):
    if case == "unsigned":
        signature = None
    elif case == "other-key":
        signature = signing.sign(DIGEST, keys["mallory"], "QA Lead")
    elif case == "other-principal":
        signature = signing.sign(DIGEST, keys["ana"], "Mallory")
    elif case == "other-digest":
        signature = signing.sign("sha256:" + "c" * 64, keys["ana"], "QA Lead")
    elif case == "other-namespace":  # a git commit signature by the same key is not an approval
        message = tmp_path / "message"
        message.write_text(DIGEST)
        subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(keys["ana"]), "-n", "git", str(message)],
                       check=True, capture_output=True)
        signature = (tmp_path / "message.sig").read_text()
    else:
        signature = "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
    principal = "Mallory" if case == "other-principal" else "QA Lead"
    with pytest.raises(GateRefused):
        signing.verify(DIGEST, signature, principal, keys["allowed"])


def test_the_signature_survives_the_manifest_and_covers_every_artifact(keys, tmp_path):
    path = tmp_path / "release.yml"
    path.write_text(MANIFEST)
    planned = release_module.load(path)
    approved = planned.approved("QA Lead", "2026-11-26T10:00:00Z", {"checks": []},
                                sign=lambda digest: signing.sign(digest, keys["ana"], "QA Lead"))
    release_module.save(approved, path)
    again = release_module.load(path)
    assert again.approval == approved.approval and again.approval.signature
    signing.verify(again.digest(), again.approval.signature, "QA Lead", keys["allowed"])
    # A swapped zip needs a new sha256 in the manifest: the digest changes, the signature no longer holds.
    swapped = path.read_text().replace(SHA, "d" * 64)
    path.write_text(swapped.replace(approved.approval.digest, "sha256:" + "0" * 64))
    forged = release_module.load(path)
    with pytest.raises(GateRefused, match="does not verify"):
        signing.verify(forged.digest(), forged.approval.signature, "QA Lead", keys["allowed"])


# --- one mask for every secret (#3) -------------------------------------------------------------------

def test_every_registered_secret_is_masked_in_run_records_and_errors(tmp_path, monkeypatch):
    token = "tok-" + os.urandom(8).hex()
    password = "pw-" + os.urandom(8).hex()
    monkeypatch.setenv("WPGATE_TEST_ECHO_TOKEN", token)
    path = tmp_path / "wpgate.yml"
    path.write_text(f"sites:\n  p:\n    path: /srv/p\n    url: http://monitor:{password}@p.test\n"
                    "    caches: [{cloudflare: {zone: z, token_env: WPGATE_TEST_ECHO_TOKEN}}]\n")
    config.load(path)
    run = Run(tmp_path / "state", "p", "r1")
    run.event("purge.failed", error=f"cloudflare answered 403: Invalid token Bearer {token}")
    run.gate("6.5", "caches", "failed", {"error": f"403 for {token}", "url": f"http://monitor:{password}@p.test/"})
    run.save_json("evidence.json", {"echo": token})
    run.finish("refused", f"{token} leaked?")
    for name in ("journal.jsonl", "report.json", "evidence.json"):
        text = (run.folder / name).read_text()
        assert token not in text and password not in text, name
        assert redact.MASK in text
    assert token not in json.dumps(run.report())
    error = GateRefused(f"answered 403: {token}")
    assert token not in str(error)
    stream = io.StringIO()
    redact.MaskedStream(stream).write(f"url http://monitor:{password}@p.test and {token}\n")
    assert token not in stream.getvalue() and password not in stream.getvalue()
    assert "http://***@p.test" in stream.getvalue()


def test_a_secret_a_command_carries_is_masked_everywhere():
    value = "db-" + os.urandom(8).hex()
    Secret(value)
    assert redact.text(f"mysqldump: access denied for password {value}") == \
        f"mysqldump: access denied for password {redact.MASK}"


# --- tracebacks (#9) ----------------------------------------------------------------------------------

def test_a_traceback_goes_to_a_private_unguessable_file_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    token = "tb-" + os.urandom(8).hex()
    redact.register(token)
    try:
        raise RuntimeError(f"boom with {token}")
    except RuntimeError:
        first = cli._write_traceback(None)
        second = cli._write_traceback(None)
    assert first != second
    assert first.parent == tmp_path / "cache" / "wpgate" / "errors"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    text = first.read_text()
    assert "RuntimeError" in text and token not in text


def test_a_config_path_below_a_file_is_bad_input_not_a_traceback(tmp_path):
    (tmp_path / "afile").write_text("")
    result = subprocess.run([sys.executable, "-m", "wpgate", "-c", str(tmp_path / "afile" / "wpgate.yml"), "status"],
                            capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
