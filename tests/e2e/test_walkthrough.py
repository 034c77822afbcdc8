"""What a new user does first (issue 17), on real sites reached over the test bed's sshd: the README's own-sites
walk-through run command by command as the README writes it (its config and commands are read from
README.md, so the README cannot drift from the tool), the plan's order from real staging updates, and the
dry run's preconditions, each failing alone with one line while production stays as it was.

The tests of this module run in file order: the dry runs need production at the release's `from` versions,
which the walk-through's deploy (last) changes.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import WPGATE, assert_unchanged, fingerprint, write_qa
from tests.support.cdn import WebhookReceiver
from tests.support.sshd import sshd
from wpgate import upgrader
from wpgate.bridge import Bridge
from wpgate.config import SiteConfig
from wpgate.testbed import fixtures
from wpgate.transports import LocalTransport

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### 2. The same steps on your own sites"
OLD = {"wpgate-clock": "1.0.0", "wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0"}
NEW = {"wpgate-clock": "1.1.0", "wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.1.0"}
# The order staging is updated in: not the alphabet's, and the last three in quick succession (the old plan,
# which sorted by the files' modification times in whole seconds, put any two of them in one second
# alphabetically: here, backwards).
STAGING_ORDER = ["wpgate-seo", "wpgate-notes", "wpgate-hello", "wpgate-clock"]


# --- the README, as written -------------------------------------------------------------------------------

def walkthrough() -> tuple[dict, list[str], list[str]]:
    """The walk-through's wpgate.yml (the first yaml block of its section), the checks its notes on the config
    give in the text (`ssh -F …`, `wpgate …` in backquotes), and its commands (the first sh block: one command
    a line, comments dropped)."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    config = re.search(r"```yaml\n(.*?)```", section, re.S)
    commands = re.search(r"```sh\n(.*?)```", section, re.S)
    assert config and commands, "the walk-through lost its wpgate.yml or its commands"
    notes = section[config.end():commands.start()]
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", notes)]
    # A command to run has its argument (`wpgate check production`); `wpgate backup` or `wpgate backup --json`
    # in a sentence names a command.
    checks = [span for span in spans if span.startswith("ssh -F ")
              or (span.startswith("wpgate ") and len(span.split()) > 2 and not span.split()[2].startswith("-"))]
    lines = [line for line in commands.group(1).splitlines() if shlex.split(line, comments=True)]
    return yaml.safe_load(config.group(1)), checks, lines


def substituted(document: dict, sites: dict, folder: Path) -> dict:
    """The README's config with only what names its hosts and paths replaced by the test bed's, and the watch
    window cut to 1 s (the suite's time budget; every test's config does so)."""
    ssh = sites["ssh"]
    staging, production = document["sites"]["staging"], document["sites"]["production"]
    for entry, site in ((staging, sites["staging"]), (production, sites["production"])):
        assert {"path", "url", "ssh"} <= set(entry), entry
        entry.update(path=str(site.path), url=site.url, ssh=ssh.alias, ssh_config=str(ssh.config_path))
    production["backup"]["dir"] = str(folder / "backups")
    assert production["backup"]["offsite"].startswith("~/"), "the off-site folder is under the user's home"
    [varnish] = [layer["varnish"] for layer in production["caches"] if "varnish" in layer]
    varnish["url"] = sites["production"].url  # Varnish's address, as the site's host sees it
    assert production["checks"]["window"] == "60s"
    production["checks"]["window"] = "1s"
    return document


def command_argv(line: str, home: Path, placeholders: dict[str, str | None]) -> list[str]:
    """The command as the shell would run it (`~` expanded), wpgate as installed here, and the README's
    placeholders (RUN_ID, BACKUP_ID, that-file, ALIAS) replaced by what they stand for here."""
    argv = shlex.split(line, comments=True)
    assert argv[0] in ("wpgate", "ssh"), line
    words = [str(WPGATE) if argv[0] == "wpgate" else argv[0]]
    for word in argv[1:]:
        if word.startswith("~/"):
            word = str(home / word[2:])
        if word in placeholders:
            assert placeholders[word], f"{line}: no {word} yet"
            word = str(placeholders[word])
        words.append(word)
    return words


def run_command(argv: list[str], folder: Path, env: dict[str, str], *, terminal_answer: str | None = None,
                prompt: str = "Deploy now?") -> subprocess.CompletedProcess[str]:
    """Run a command in `folder` (so ./wpgate.yml is the config). With `terminal_answer`, standard input is a
    terminal (a pty): the command may ask, and the answer is typed once the prompt shows on stderr."""
    if terminal_answer is None:
        return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdin=terminal, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        os.close(terminal)
        stderr, stdout = b"", b""
        answered = False
        deadline = time.monotonic() + 600
        streams = {process.stdout: "out", process.stderr: "err"}
        while streams and time.monotonic() < deadline:
            ready, _, _ = select.select(list(streams), [], [], 1.0)
            for stream in ready:
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    del streams[stream]
                elif streams[stream] == "err":
                    stderr += chunk
                else:
                    stdout += chunk
            if not answered and prompt.encode() in stderr:
                os.write(controller, terminal_answer.encode())
                answered = True
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
        return subprocess.CompletedProcess(argv, process.returncode, stdout.decode(), stderr.decode())
    finally:
        os.close(controller)


# --- the sites --------------------------------------------------------------------------------------------

def plugin_zip(folder: Path, slug: str, version: str) -> Path:
    source = fixtures.write_plugin(folder / f"source-{slug}-{version}", slug, version)
    path = folder / f"{slug}-{version}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                archive.write(file, f"{slug}/{file.relative_to(source).as_posix()}")
    return path


def update_for_real(site, order: list[str], folder: Path) -> None:
    """Update staging's plugins in `order` with WordPress's own upgrader (Plugin_Upgrader::bulk_upgrade of one
    plugin, as the Dashboard's "Update now"), from zips: the first, then two seconds later the others at once."""
    bridge = Bridge(site.name, SiteConfig(path=str(site.path), url=site.url), LocalTransport())
    for index, slug in enumerate(order):
        package = folder / f"{slug}.install.zip"
        shutil.copyfile(plugin_zip(folder, slug, NEW[slug]), package)  # the upgrader consumes its package
        result = upgrader.install_component(bridge, kind="plugin", slug=slug, package=str(package),
                                            version=NEW[slug])
        assert result["version"] == NEW[slug] and result["method"] == "bulk_upgrade", result
        if index == 0:
            time.sleep(2)


@pytest.fixture(scope="module")
def sites(bed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("walkthrough")
    staging = bed.create_site("walk-staging", core="6.5.5", plugins=OLD)
    update_for_real(staging, STAGING_ORDER, tmp_path_factory.mktemp("packages"))
    # Production behind Varnish, its database user with WordPress's own grants only (as on most hosts), a
    # page /shop/ and a monitor account, as the README's config expects.
    production = bed.create_site("walk-prod", core="6.5.5", plugins=OLD, varnish=True, own_database_only=True)
    password = "monitor-" + os.urandom(9).hex()
    for site in (production, staging):  # staging is production's copy: `wpgate qa` checks it the same way
        site.php("$id = wp_insert_post(array('post_type' => 'page', 'post_name' => 'shop', 'post_title' => 'Shop', "
                 "'post_status' => 'publish', 'post_content' => 'The shop.'), true); if (is_wp_error($id)) exit(1);"
                 f"$user = wp_insert_user(array('user_login' => 'monitor', 'user_pass' => '{password}', "
                 "'user_email' => 'monitor@walk.test', 'role' => 'editor')); if (is_wp_error($user)) exit(1);")
    webhook = WebhookReceiver("")
    webhook.start()
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "walkthrough", "-f",
                    str(home / ".ssh" / "id_ed25519")], check=True)
    env = {**os.environ, "HOME": str(home), "WP_MONITOR_PASSWORD": password,
           "SLACK_WEBHOOK_URL": webhook.url + "/hook"}
    yield {"folder": folder, "staging": staging, "production": production, "ssh": sshd(bed), "home": home,
           "env": env, "webhook": webhook, "password": password}
    webhook.stop()


@pytest.fixture(scope="module")
def walk(sites):
    """The walk-through up to its first deploy, command by command: the config's checks (ssh, backup, restore
    --verify, purge --dry-run, check), then inventory, plan, (QA), approve. The plan as written before approval
    is kept as planned.yml."""
    folder, env = sites["folder"], sites["env"]
    document, checks, lines = walkthrough()
    (folder / "wpgate.yml").write_text(yaml.safe_dump(substituted(document, sites, folder), sort_keys=False))
    placeholders: dict[str, str | None] = {"that-file": str(sites["ssh"].config_path), "ALIAS": sites["ssh"].alias,
                                           "BACKUP_ID": None, "RUN_ID": None}
    first_deploy = next(index for index, line in enumerate(lines) if shlex.split(line, comments=True)[1] == "deploy")
    results = {}
    for line in checks + lines[:first_deploy]:
        command = " ".join(shlex.split(line)[:2])
        if command == "wpgate approve":
            write_qa(folder)  # "… QA on staging, recorded in qa.yml …"
            shutil.copyfile(folder / "release.yml", folder / "planned.yml")
        result = run_command(command_argv(line, sites["home"], placeholders), folder, env)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        results[command] = result
        if command == "wpgate backup":
            [backup] = (folder / "backups").iterdir()
            placeholders["BACKUP_ID"] = backup.name
    assert set(results) >= {"ssh -F", "wpgate backup", "wpgate restore", "wpgate purge", "wpgate check"}, checks
    return {"lines": lines[first_deploy:], "results": results, "release": folder / "release.yml",
            "config": folder / "wpgate.yml", "placeholders": placeholders}


def variant(sites, name: str, change) -> Path:
    """The walk-through's config with one thing changed, beside it (so the same state_dir)."""
    document = yaml.safe_load((sites["folder"] / "wpgate.yml").read_text())
    change(document["sites"]["production"])
    path = sites["folder"] / f"{name}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def dry_run(sites, walk, config: Path | None = None, release: Path | None = None, env: dict | None = None):
    argv = [str(WPGATE), "-c", str(config or walk["config"]), "deploy", str(release or walk["release"]),
            "--to", "production", "--dry-run"]
    return run_command(argv, sites["folder"], {**sites["env"], **(env or {})})


def error_line(result) -> str:
    [line] = [line for line in result.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert "Traceback" not in result.stderr
    return line


# --- the plan's order -------------------------------------------------------------------------------------

def test_the_plan_follows_the_order_staging_was_updated_in_and_says_where_it_read_it(walk):
    updates = yaml.safe_load(walk["release"].read_text())["updates"]
    assert [u["slug"] for u in updates] == STAGING_ORDER
    said = walk["results"]["wpgate plan"].stderr
    assert "plugin order: as staging updated them, read from the change times (ctime) of staging's plugin " \
           "folders, to the nanosecond: WordPress keeps no record of when it updated each plugin:" in said
    times = re.findall(r"^    \d\. (wpgate-[a-z]+)  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}) UTC$", said, re.M)
    assert [slug for slug, _ in times] == STAGING_ORDER and sorted(when for _, when in times) == [w for _, w in times]
    assert "tie:" not in said


def test_an_order_edited_before_approval_is_approved_and_is_the_order_deploy_would_apply(sites, walk):
    edited = sites["folder"] / "edited.yml"
    document = yaml.safe_load((sites["folder"] / "planned.yml").read_text())
    document["updates"] = sorted(document["updates"], key=lambda update: update["slug"])
    edited.write_text(yaml.safe_dump(document, sort_keys=False))
    approved = run_command([str(WPGATE), "approve", str(edited), "--qa", "qa.yml", "--by", "Ana"], sites["folder"],
                           sites["env"])
    assert approved.returncode == 0, approved.stderr
    digest = yaml.safe_load(edited.read_text())["approval"]["digest"]
    assert digest != yaml.safe_load(walk["release"].read_text())["approval"]["digest"], "the digest covers the order"
    result = dry_run(sites, walk, release=edited)
    assert result.returncode == 0, result.stderr
    plan = result.stderr.split("The apply gate would do, in this order:", 1)[1]
    assert [slug for slug in re.findall(r"plugin (wpgate-[a-z]+)", plan)][:4] == sorted(STAGING_ORDER)

    after = yaml.safe_load(edited.read_text())
    after["updates"][0], after["updates"][1] = after["updates"][1], after["updates"][0]
    reordered = sites["folder"] / "reordered-after-approval.yml"
    reordered.write_text(yaml.safe_dump(after, sort_keys=False))
    refused = dry_run(sites, walk, release=reordered)
    assert refused.returncode == 3, refused.stderr
    assert "digest" in error_line(refused)


# --- the dry run's preconditions (issue 17, point 6) --------------------------------------------------------

def test_a_monitor_password_that_does_not_log_in_fails_the_dry_run(sites, walk):
    before = fingerprint(sites["production"])
    result = dry_run(sites, walk, env={"WP_MONITOR_PASSWORD": "not-the-password"})
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert "the monitor account monitor cannot log in" in line and "(dry run; production was not changed)" in line
    assert "✘ 6.6 monitor: failed" in result.stderr and "not-the-password" not in result.stderr
    assert_unchanged(before, fingerprint(sites["production"]))


@pytest.fixture
def small_disks(tmp_path):
    """A read-only and a 1 MB tmpfs, mounted for the test (root, as CI's containers give; never skipped)."""
    mounts = {"read-only": tmp_path / "read-only", "tiny": tmp_path / "tiny"}
    options = {"read-only": "size=1m,ro", "tiny": "size=1m,mode=0755"}
    mounted = []
    try:
        for name, path in mounts.items():
            path.mkdir()
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", options[name], "tmpfs", str(path)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"cannot mount a tmpfs ({done.stderr.strip()}): these tests need root with "
                            "CAP_SYS_ADMIN, as CI's container has")
            mounted.append(path)
        yield mounts
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_backup_and_off_site_folders_that_cannot_take_a_backup_fail_the_dry_run(sites, walk, small_disks):
    before = fingerprint(sites["production"])
    read_only, tiny = small_disks["read-only"], small_disks["tiny"]
    cases = {
        "unwritable": (lambda site: site["backup"].update(dir=str(read_only / "wpgate")),
                       [f"sites.production.backup.dir {read_only}/wpgate: {read_only} (the folder above it that "
                        "exists) on", "is not writable by the account wpgate uses"]),
        "full": (lambda site: site["backup"].update(dir=str(tiny / "wpgate")),
                 [f"sites.production.backup.dir {tiny}/wpgate: the disk holding {tiny} on", "1.0 MB free; a "
                  "backup needs at least", "MB there (the site's files, which the restore proof unpacks"]),
        "offsite": (lambda site: site["backup"].update(offsite=str(read_only / "offsite")),
                    [f"sites.production.backup.offsite {read_only}/offsite: {read_only} (the folder above it that "
                     "exists) is not writable by this user"]),
    }
    for name, (change, fragments) in cases.items():
        result = dry_run(sites, walk, config=variant(sites, name, change))
        assert result.returncode == 3, (name, result.stderr)
        line = error_line(result)
        for fragment in fragments:
            assert fragment in line, (name, line)
        assert "✘ 6.2 backup: failed" in result.stderr
    assert list(tiny.iterdir()) == [], "nothing was written on the small disk"
    assert_unchanged(before, fingerprint(sites["production"]))


def test_a_restore_proof_the_database_user_cannot_run_fails_the_dry_run(sites, walk):
    """The user has WordPress's own grants only: the proof would use scratch tables in its database. A table
    whose name the scratch prefix would make too long, or a verify_database it cannot use, fails the dry run."""
    production = sites["production"]
    long_name = "wp_" + "x" * 47  # 50 characters: 65 under the prefix
    production.sql(f"CREATE TABLE `{long_name}` (id INT PRIMARY KEY)")
    try:
        result = dry_run(sites, walk)
        assert result.returncode == 3, result.stderr
        line = error_line(result)
        assert f"table(s) {long_name} would be longer than 64 characters under a scratch prefix" in line
        assert f"may not create the scratch database {production.db_name}_wpgate_verify" in line
    finally:
        production.sql(f"DROP TABLE `{long_name}`")
    config = variant(sites, "elsewhere", lambda site: site["backup"].update(verify_database="walk_elsewhere"))
    result = dry_run(sites, walk, config=config)
    assert result.returncode == 3, result.stderr
    assert f"sites.production.backup.verify_database walk_elsewhere: the database user {production.db_user} " \
           "cannot see it" in error_line(result)


# --- the walk-through's deploy (last: production changes) ---------------------------------------------------

def test_the_readme_walkthrough_runs_as_written_over_ssh(sites, walk):
    folder, env, production = sites["folder"], sites["env"], sites["production"]
    said = {command: result.stdout + result.stderr for command, result in walk["results"].items()}
    assert re.match(r"PHP 8\.\d+", said["ssh -F"])
    assert "restorable" in said["wpgate restore"] and "✔ admin: passed" in said["wpgate check"]
    assert "wpgate-seo" in said["wpgate inventory"] and "3.0.0" in said["wpgate inventory"]
    assert f"signed with {sites['home']}/.ssh/id_ed25519" in said["wpgate approve"]
    placeholders = walk["placeholders"]
    for line in walk["lines"]:
        words = shlex.split(line, comments=True)
        asks = words[1] == "deploy" and "--dry-run" not in words and "--yes" not in words
        result = run_command(command_argv(line, sites["home"], placeholders), folder, env,
                             terminal_answer="y\n" if asks else None)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        said[" ".join(words[1:])] = result.stderr
        found = re.search(r"^run (\S+): deploying release", result.stderr, re.M)
        placeholders["RUN_ID"] = found.group(1) if found else placeholders["RUN_ID"]
    run_id = placeholders["RUN_ID"]

    dry = said["deploy release.yml --to production --dry-run"]
    assert "dry run: nothing was changed" in dry
    for precondition in ("✔ backup folder: ", "✔ not served by the site: ", "✔ off-site folder: ",
                         f"✔ restore proof: into scratch tables under a prefix (wpgatev_…) in {production.db_name}",
                         "✔ monitor login: the monitor account monitor logs in", "– varnish access: varnish has no "
                         "read-only call"):
        assert precondition in dry, precondition
    assert f"deploy checks the newest backup, {placeholders['BACKUP_ID']} (" in dry

    deployed = said["deploy release.yml --to production"]
    assert "Deploy now?" in deployed and f"run {run_id}: deploying release" in deployed
    assert "complete: production holds release" in deployed
    assert run_id and "complete" in said["status"]
    assert (folder / "report.html").is_file() and run_id in (folder / "report.html").read_text()
    report = json.loads((folder / ".wpgate" / "runs" / run_id / "report.json").read_text())
    assert report["status"] == "complete"
    assert [u["slug"] for u in report["updates"]] == STAGING_ORDER
    assert (sites["home"] / "wpgate-offsite" / report["backup"]["id"]).is_dir(), "the off-site copy, under ~"
    notified = [json.loads(request.body) for request in sites["webhook"].requests]
    assert len(notified) == 1 and notified[0]["wpgate"]["run"] == run_id and "deployed" in notified[0]["text"]
