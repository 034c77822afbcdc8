"""Backups with `engine: restic` on real sites: a local repository on the site's host, copied to an `s3:` repository
on a local moto_server (started and stopped here) and to an `sftp:` repository through a second loopback sshd.

One production site (its database user has WordPress's own grants only) and one release. First the refusals,
each exit 3 with one line and production untouched: restic missing, a wrong password, an unreachable S3, a
full disk under the repository, a damaged pack off-site. Then a complete deploy whose backup is three tagged
snapshots copied off-site, an incremental backup after it, and a copy over sftp; no secret in any output,
journal or report, and no dump on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import (assert_unchanged, fingerprint, site_entry, wpgate,
                               write_config, write_qa)
from tests.support.sshd import SshServer, sshd
from wpgate.testbed.process import ManagedProcess, free_port

pytestmark = pytest.mark.e2e

PASSWORD = "restic-test-password-5f1e0c9a"
KEY_ID, SECRET_KEY = "AKIAWPGATETESTKEY01", "s3-secret-key-d41d8cd98f00b204e980"
ENV = {"WPGATE_RESTIC_PASSWORD": PASSWORD, "WPGATE_S3_KEY": KEY_ID, "WPGATE_S3_SECRET": SECRET_KEY}
SECRETS = (PASSWORD, KEY_ID, SECRET_KEY)
MOTO_SERVER = Path(os.environ.get("VIRTUAL_ENV", Path(__import__("sys").executable).parent.parent)) / "bin" / "moto_server"


def restic(repository: str, *args: str, env: dict[str, str] | None = None, check: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": repository,
                   "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, **(env or {})}
    result = subprocess.run(["restic", *args], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0 or not check, result.stderr
    return result


def snapshots(repository: str, *options: str) -> list[dict]:
    return json.loads(restic(repository, *options, "snapshots", "--json").stdout or "[]")


def tags_of(snapshot: dict) -> dict[str, str]:
    return dict(tag.split("=", 1) for tag in snapshot.get("tags") or [] if "=" in tag)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moto")
    port = free_port()
    server = ManagedProcess("moto_server", [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                            log_path=folder / "moto.log")
    server.start()
    try:
        server.wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sftp_server(tmp_path_factory):
    server = SshServer(tmp_path_factory.mktemp("sftp-sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scene(bed, moto, tmp_path_factory):
    folder = tmp_path_factory.mktemp("restic")
    staging = bed.create_site("restic-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0"})
    production = bed.create_site("restic-prod", core="6.5.5", plugins={"wpgate-hello": "1.0.0"},
                                 own_database_only=True)
    primary = str(folder / "repository")
    offsite = f"s3:{moto}/wpgate-offsite/restic-prod"
    restic(primary, "init")
    restic(offsite, "init", "--from-repo", primary, "--copy-chunker-params",
           env={"RESTIC_FROM_PASSWORD_FILE": str(_password_file(folder))})
    backup = {"engine": "restic", "repository": primary, "offsite": offsite, "password_env": "WPGATE_RESTIC_PASSWORD",
              "offsite_env": {"AWS_ACCESS_KEY_ID": "WPGATE_S3_KEY", "AWS_SECRET_ACCESS_KEY": "WPGATE_S3_SECRET"},
              "check_subset": "100%"}

    def config(name: str, ssh=None, **changes) -> Path:
        where = folder / name
        where.mkdir(exist_ok=True)
        return write_config(where, {"staging": site_entry(staging),
                                    "production": site_entry(production, ssh=ssh, backup={**backup, **changes})},
                            state_dir=str(folder / "state"))

    main = config("main")
    release = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=main)
    assert result.returncode == 0, result.stderr
    result = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester", config=main)
    assert result.returncode == 0, result.stderr
    outputs: list[str] = []

    def run(*args: str, config_path: Path = main, env: dict[str, str] | None = None):
        result = wpgate(*args, config=config_path, env={**ENV, **(env or {})})
        outputs.extend((result.stdout, result.stderr))
        return result

    return {"folder": folder, "production": production, "primary": primary, "offsite": offsite, "config": config,
            "main": main, "release": release, "run": run, "outputs": outputs, "backup": backup, "moto": moto}


def _password_file(folder: Path) -> Path:
    path = folder / "password"
    path.write_text(PASSWORD)
    path.chmod(0o600)
    return path


def deploy(scene, config_path: Path | None = None, env: dict[str, str] | None = None):
    return scene["run"]("deploy", str(scene["release"]), "--to", "production", "--yes",
                        config_path=config_path or scene["main"], env=env)


def _holding_the_exclusive_lock(repository: str) -> subprocess.Popen:
    """A `restic check` of the repository, stopped (SIGSTOP) while it holds the exclusive lock; on a small
    repository it may finish between the lock taken and the stop: then once more. Stopped only once it says
    it is past the lock ("load indexes"): stopped while its lock file is still being written, the file
    cannot be read, and restic ignores a lock it cannot read."""
    locks = Path(repository, "locks")
    for _ in range(10):
        holder = subprocess.Popen(["restic", "check"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env={**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": repository})
        assert holder.stdout is not None
        for line in holder.stdout:
            if line.startswith("load indexes"):
                break
        holder.send_signal(signal.SIGSTOP)
        if holder.poll() is None and any(locks.iterdir()):
            return holder
        holder.send_signal(signal.SIGCONT)
        holder.communicate(timeout=120)
    raise AssertionError(f"restic check of {repository} never held its lock long enough to be stopped")


def refused(result, *fragments: str) -> str:
    """Gate 6.2 refused (exit 3) with one error line naming `fragments`, no traceback."""
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert len(errors) == 1, result.stderr
    assert "✘ 6.2 backup: failed" in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def test_refusals_change_nothing(scene, tmp_path):
    production, primary = scene["production"], scene["primary"]
    before = fingerprint(production)
    # restic missing on the site's host: a PATH without it.
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for path in Path(folder).iterdir():
            if path.name != "restic" and not (tools / path.name).exists():
                (tools / path.name).symlink_to(path)
    result = deploy(scene, env={"PATH": str(tools)})
    refused(result, "restic is not installed", "apt install restic")
    # A wrong password.
    result = deploy(scene, env={"WPGATE_RESTIC_PASSWORD": "not-the-password"})
    refused(result, "WPGATE_RESTIC_PASSWORD does not open the repository", primary)
    # The off-site S3 store does not answer.
    closed = f"s3:http://127.0.0.1:{free_port()}/wpgate-offsite/restic-prod"
    result = deploy(scene, scene["config"]("unreachable", offsite=closed))
    refused(result, "cannot reach the off-site repository", closed)
    # The disk under the repository fills up while the files go in.
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)], check=True)
    try:
        restic(str(small / "repository"), "init")
        result = deploy(scene, scene["config"]("full", repository=str(small / "repository")))
        refused(result, "is full (No space left on device)", str(small / "repository"))
    finally:
        subprocess.run(["umount", str(small)], check=True)
    # Another restic process holds the repository's exclusive lock (a maintainer's `restic check` from cron,
    # stopped here while it holds it): one line naming the holder and what to do, nothing taken.
    holder = _holding_the_exclusive_lock(primary)
    try:
        result = deploy(scene)
        refused(result, "is locked by another restic process", f"PID {holder.pid}", "restic unlock", primary)
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.communicate(timeout=120)
    # A damaged pack in the off-site repository, found by `restic check --read-data-subset`.
    damaged = str(tmp_path / "damaged")
    restic(damaged, "init", "--from-repo", primary, "--copy-chunker-params",
           env={"RESTIC_FROM_PASSWORD_FILE": str(scene["folder"] / "password")})
    restic(damaged, "backup", str(Path(__file__).parent))
    packs = [path for path in Path(damaged, "data").rglob("*") if path.is_file()]
    with open(packs[0], "r+b") as pack:
        pack.seek(100)
        pack.write(b"\0damaged\0" * 4)
    result = deploy(scene, scene["config"]("damaged", offsite=damaged))
    refused(result, "found the off-site repository", "damaged")
    assert_unchanged(before, fingerprint(production))
    assert snapshots(primary) == []  # what a refused backup wrote is forgotten
    assert [tags_of(s).get("backup") for s in snapshots(damaged)] == [None]


@pytest.fixture(scope="module")
def deployed(scene):
    """The release deployed complete: gate 6.2 takes the first restic backup."""
    result = deploy(scene, env={})
    assert result.returncode == 0, result.stderr
    run_id = next(line.split()[1].rstrip(":") for line in result.stderr.splitlines() if line.startswith("run "))
    return {"result": result, "run": run_id, "folder": scene["folder"] / "state" / "runs" / run_id}


def test_deploy_backs_up_into_tagged_snapshots_copied_off_site(scene, deployed):
    report = json.loads((deployed["folder"] / "report.json").read_text())
    assert report["status"] == "complete"
    backup_id = report["backup"]["id"]
    release_id = report["release"]
    listed = snapshots(scene["primary"])
    ours = [snapshot for snapshot in listed if tags_of(snapshot).get("backup") == backup_id]
    assert sorted(tags_of(snapshot)["part"] for snapshot in ours) == ["database.sql", "files", "manifest.json"]
    for snapshot in ours:
        tags = tags_of(snapshot)
        assert (tags["site"], tags["run"], tags["release"]) == ("production", deployed["run"], release_id)
        assert "wpgate" in snapshot["tags"]
    files = next(snapshot for snapshot in ours if tags_of(snapshot)["part"] == "files")
    assert files["paths"] == [str(scene["production"].path)]
    database = next(snapshot for snapshot in ours if tags_of(snapshot)["part"] == "database.sql")
    assert database["paths"] == ["/database.sql"]
    dump = restic(scene["primary"], "dump", database["id"], "/database.sql").stdout
    assert "CREATE TABLE `wp_options`" in dump and "-- Dump completed" in dump
    # Off-site: a copy of each of the three, found by its original's id, in the S3 store.
    copies = snapshots(scene["offsite"])
    assert {snapshot["original"] for snapshot in copies} >= {snapshot["id"] for snapshot in ours}
    # The gate proved it: restored into scratch tables (WordPress's own grants only) and a scratch folder.
    gate = next(gate for gate in report["gates"] if gate["step"] == "6.2")
    assert gate["status"] == "passed"
    assert gate["evidence"]["engine"] == "restic" and gate["evidence"]["taken"] is True
    assert [record["check"] for record in gate["evidence"]["preconditions"]] == [
        "restic", "repository", "off-site repository"]


def _leftovers_of(site) -> list[str]:
    """wpgate's private temporary folders, on this machine (the site's host, locally and over ssh), that hold
    this site's database password or one of the secrets."""
    found = []
    for folder in {Path(os.environ.get("TMPDIR", "/tmp")), Path("/tmp")}:
        for path in [*folder.glob("wpgate-db-*"), *folder.glob("wpgate-restic-*")]:
            try:
                text = "".join(part.read_text(errors="replace") for part in path.rglob("*") if part.is_file())
            except OSError:
                continue  # another process's, removed while it was read
            if site.db_password in text or any(secret in text for secret in SECRETS):
                found.append(str(path))
    return found


def _secrets_in_process_arguments(process: subprocess.Popen) -> set[str]:
    """Every secret seen in any process's arguments (/proc/*/cmdline) while `process` runs."""
    seen: set[str] = set()
    while process.poll() is None:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().decode(errors="replace")
            except OSError:
                continue
            seen.update(secret for secret in SECRETS if secret in text)
    return seen


@pytest.mark.parametrize("over_ssh", [False, True], ids=["local", "ssh"])
def test_a_second_backup_is_incremental_and_no_secret_is_an_argument(scene, deployed, bed, over_ssh):
    """Locally, then with the site reached through the test bed's sshd: restic runs on the site's host, its
    secrets on the ssh session's standard input, never on its command line."""
    from tests.e2e.helpers import WPGATE

    config = scene["config"]("over-ssh", ssh=sshd(bed)) if over_ssh else scene["main"]
    scene["production"].sql("UPDATE wp_options SET option_value = 'Changed since' WHERE option_name = 'blogdescription'")
    process = subprocess.Popen([str(WPGATE), "-c", str(config), "backup", "production", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                               env={**os.environ, **ENV})
    seen = _secrets_in_process_arguments(process)
    stdout, stderr = process.communicate(timeout=300)
    scene["outputs"].extend((stdout, stderr))
    assert process.returncode == 0, stderr
    assert seen == set()
    manifest = json.loads(stdout)
    assert manifest["engine"] == "restic"
    # Since the deploy's backup only the plugin's files and a log changed under the root: the rest is read from
    # the parent snapshot, and only new chunks are stored.
    files = manifest["files"]
    assert files["new"] + files["changed"] < 20 and files["unmodified"] > 1000
    assert files["bytes_added"] < 50_000 < files["bytes"]
    restored = restic(scene["primary"], "dump", manifest["snapshots"]["database.sql"], "/database.sql").stdout
    assert "Changed since" in restored
    # No dump, options file or password file of this site left in the host's temporary folder (the suite's
    # other processes make their own there at the same time); the repository is encrypted.
    assert _leftovers_of(scene["production"]) == []
    assert not [path for path in Path(scene["primary"]).rglob("*")
                if path.is_file() and b"Changed since" in path.read_bytes()]


def test_offsite_over_sftp_through_a_second_sshd(scene, deployed, sftp_server):
    folder = sftp_server.workdir / "offsite-repository"
    command = f"ssh -F {sftp_server.config_path} {sftp_server.alias} -s sftp"
    repository = f"sftp:{sftp_server.alias}:{folder}"
    option = ["-o", f"sftp.command={command}"]
    restic(repository, *option, "init", "--from-repo", scene["primary"], "--copy-chunker-params",
           env={"RESTIC_FROM_PASSWORD_FILE": str(scene["folder"] / "password")})
    config = scene["config"]("sftp", offsite=repository, offsite_env={}, restic_options={"sftp.command": command})
    result = scene["run"]("backup", "production", "--json", config_path=config)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    copies = json.loads(restic(repository, *option, "snapshots", "--json").stdout)
    assert {snapshot["original"] for snapshot in copies} == set(manifest["snapshots"].values())


def _pack_bytes(scene) -> dict[str, int]:
    """The bytes of each repository's data packs: what `restic prune` frees (`forget` alone leaves every pack)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=scene["moto"], region_name="us-east-1", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET_KEY)
    offsite = sum(item["Size"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="wpgate-offsite", Prefix="restic-prod/data/") for item in page.get("Contents", []))
    primary = sum(path.stat().st_size for path in Path(scene["primary"], "data").rglob("*") if path.is_file())
    return {"primary": primary, "offsite": offsite}


def _parts_by_backup(repository: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for snapshot in snapshots(repository):
        tags = tags_of(snapshot)
        found.setdefault(tags.get("backup", ""), set()).add(tags.get("part", ""))
    return found


def test_prune_forgets_and_prunes_in_both_repositories_and_keeps_the_runs_backup(scene, deployed, tmp_path):
    """keep_last 1, after the backups of the tests above and two more: the first of them holds 4 MB that no other
    backup holds (random bytes in an upload, removed before the second). The deployed run is complete: its
    backup stays, with the newest, for the rollback and restore tests below."""
    production, primary, offsite = scene["production"], scene["primary"], scene["offsite"]
    config = scene["config"]("prune", keep_last=1, check_subset="1%")
    ballast = Path(production.path) / "wp-content/uploads/wpgate-prune-ballast.bin"
    ballast.parent.mkdir(parents=True, exist_ok=True)
    ballast.write_bytes(os.urandom(4 << 20))
    try:
        production.sql("UPDATE wp_options SET option_value = 'Before the prune' WHERE option_name = 'blogdescription'")
        heavy = scene["run"]("backup", "production", "--json", config_path=config)
        assert heavy.returncode == 0, heavy.stderr
    finally:
        ballast.unlink()
    production.sql("UPDATE wp_options SET option_value = 'Changed since' WHERE option_name = 'blogdescription'")
    newest = scene["run"]("backup", "production", "--json", config_path=config)
    assert newest.returncode == 0, newest.stderr
    heavy_id, newest_id = json.loads(heavy.stdout)["id"], json.loads(newest.stdout)["id"]
    run_backup = json.loads((deployed["folder"] / "report.json").read_text())["backup"]["id"]
    # Another site named production, elsewhere, backs up into the same repository: its backup, however old, is
    # none of this site's, and retention leaves it alone.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.php").write_text("<?php // another site")
    foreign = "production-20200101-000000-abcd"
    for part, source in (("files", [str(elsewhere)]), ("database.sql", ["--stdin", "--stdin-filename", "database.sql"]),
                         ("manifest.json", ["--stdin", "--stdin-filename", "manifest.json"])):
        subprocess.run(["restic", "-q", "backup", "--tag", f"wpgate,site=production,backup={foreign},part={part}",
                        *source], input="{}", text=True, check=True, capture_output=True, timeout=300,
                       env={**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": primary})
    listed = {repository: snapshots(repository) for repository in (primary, offsite)}
    expected = {tags_of(snapshot)["backup"] for snapshot in listed[primary]} - {run_backup, newest_id, foreign}
    assert heavy_id in expected and run_backup != newest_id
    packs = _pack_bytes(scene)
    # The dry run names them and changes nothing in either repository.
    dry = scene["run"]("prune", "production", "--dry-run", "--json", config_path=config)
    assert dry.returncode == 0, dry.stderr
    decided = json.loads(dry.stdout)["backups"]
    assert {entry["name"] for entry in decided if not entry["keep"]} == expected
    assert foreign not in {entry["name"] for entry in decided}
    kept = {entry["name"]: " ".join(entry["reasons"]) for entry in decided if entry["keep"]}
    assert f"run {deployed['run']} is complete" in kept[run_backup] and "the newest backup" in kept[newest_id]
    assert f"would remove backup {heavy_id} (on the host and off-site)" in dry.stderr
    assert {repository: snapshots(repository) for repository in (primary, offsite)} == listed
    assert _pack_bytes(scene) == packs
    # The off-site repository does not answer: exit 5, one line, and the backups stay whole in the repository
    # (off-site goes first), where the next prune finds them again.
    closed = f"s3:http://127.0.0.1:{free_port()}/wpgate-offsite/restic-prod"
    failed = scene["run"]("prune", "production", config_path=scene["config"]("prune-closed", keep_last=1,
                                                                              offsite=closed))
    assert failed.returncode == 5, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert len(errors) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert f"its snapshots in {primary} were left whole" in failed.stderr, failed.stderr
    assert {repository: snapshots(repository) for repository in (primary, offsite)} == listed
    # The prune: exactly those backups' snapshots are gone from both repositories, and their data with them.
    result = scene["run"]("prune", "production", "--json", config_path=config)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["problems"] == []
    assert {entry["name"] for entry in document["backups"] if entry.get("removed")} == expected
    for repository in (primary, offsite):
        left = _parts_by_backup(repository)
        assert not set(left) & expected, repository
        assert left[run_backup] == left[newest_id] == {"files", "database.sql", "manifest.json"}, repository
    assert _parts_by_backup(primary)[foreign] == {"files", "database.sql", "manifest.json"}
    after = _pack_bytes(scene)
    assert after["primary"] < packs["primary"] - (3 << 20) and after["offsite"] < packs["offsite"] - (3 << 20), (
        packs, after)
    for repository in (primary, offsite):
        restic(repository, "check")


def test_rollback_of_the_complete_run_takes_the_plugin_and_the_database_from_the_snapshots(scene, deployed):
    production = scene["production"]
    plugin = Path(production.path) / "wp-content/plugins/wpgate-hello"
    assert "1.2.0" in (plugin / "wpgate-hello.php").read_text()
    marker = Path(production.path) / "wp-content/uploads/written-after-the-deploy.txt"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("a visitor's upload")
    core_file = Path(production.path) / "wp-includes/version.php"
    core_inode = core_file.stat().st_ino
    production.sql("INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, "
                   "comment_date_gmt) VALUES (1, 'Visitor', 'Written after the backup', NOW(), UTC_TIMESTAMP())")
    # A cache WordPress rebuilds is no visitor's row: it leaves with the database's return to the backup.
    production.sql("INSERT INTO wp_options (option_name, option_value, autoload) "
                   "VALUES ('_transient_wpgate_restic_probe', 'after the backup', 'no')")
    result = scene["run"]("rollback", deployed["run"], "--yes", "--restore-database")
    assert result.returncode == 0, result.stderr
    assert "1.0.0" in (plugin / "wpgate-hello.php").read_text()
    # Only the changed component's folder came back: core and the uploads were not touched.
    assert marker.read_text() == "a visitor's upload"
    assert core_file.stat().st_ino == core_inode
    # The database came back from the database.sql snapshot, and the row written since was put back.
    assert "Written after the backup" in production.sql("SELECT comment_content FROM wp_comments")
    assert production.sql("SELECT COUNT(*) FROM wp_options WHERE option_name = '_transient_wpgate_restic_probe'"
                          ).split()[-1] == "0"
    journal = (deployed["folder"] / "journal.jsonl").read_text()
    events = [json.loads(line) for line in journal.splitlines()]
    assert any(event["event"] == "aside_from_backup.done" and event["engine"] == "restic" for event in events)
    assert any(event["event"] == "restore_database.done" for event in events)


def test_restore_from_the_restic_backup_keeps_the_rows_written_since(scene, deployed):
    """`wpgate restore BACKUP_ID` from restic snapshots: refused with a wrong password (exit 3, nothing changed);
    --dry-run names what differs and changes nothing; the restore puts the plugin back from the files snapshot
    and the database from the dump snapshot, keeps the visitor's comment, proves it and records it."""
    production = scene["production"]
    backup_id = json.loads((deployed["folder"] / "report.json").read_text())["backup"]["id"]
    production.install_plugin("wpgate-hello", "1.2.0")
    production.sql("INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, "
                   "comment_date_gmt) VALUES (1, 'Visitor', 'Written before the restore', NOW(), UTC_TIMESTAMP())")
    changed = fingerprint(production)
    result = scene["run"]("restore", backup_id, "--yes", env={"WPGATE_RESTIC_PASSWORD": "not-the-password"})
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"wpgate: error: backup {backup_id} cannot be restored"), errors
    assert "nothing was changed" in errors[0]
    dry = scene["run"]("restore", backup_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "puts back plugin wpgate-hello 1.0.0 (now 1.2.0)" in dry.stderr and "wp_comments" in dry.stderr
    assert_unchanged(changed, fingerprint(production))
    restores = scene["folder"] / "state" / "restores"
    assert not restores.exists()
    result = scene["run"]("restore", backup_id, "--yes", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "complete" and record["updates"][0]["status"] == "rolled_back"
    plugin = Path(production.path) / "wp-content/plugins/wpgate-hello/wpgate-hello.php"
    assert "1.0.0" in plugin.read_text()
    comments = production.sql("SELECT comment_content FROM wp_comments")
    assert "Written before the restore" in comments and "Written after the backup" in comments
    # Files outside the components the backup differs in are left alone (a visitor's upload).
    assert (Path(production.path) / "wp-content/uploads/written-after-the-deploy.txt").exists()
    events = [json.loads(line) for line in (restores / record["run"] / "journal.jsonl").read_text().splitlines()]
    assert any(event["event"] == "aside_from_backup.done" and event["engine"] == "restic" for event in events)
    assert any(event["event"] == "restore_database.done" for event in events)
    assert record["database_rollback"]["database"] == "restored"
    # `status` and `report` find the restore's record by its id, as they find a run's.
    shown = scene["run"]("status", record["run"], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "complete", shown.stderr
    told = scene["run"]("report", record["run"])
    assert told.returncode == 0 and record["run"] in told.stdout and backup_id in told.stdout, told.stderr


def test_archive_engine_off_site_to_s3_and_over_sftp(scene, sftp_server):
    """engine: archive with its second copy in the same S3 store (boto3) and through the same second sshd; then
    `wpgate prune` removes the copies of the backups retention lets go from each store, and exits 5 (the host's
    copy left whole) when the store cannot be reached."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=scene["moto"], region_name="us-east-1", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="wpgate-archive")
    folder = scene["folder"]
    archive = {"dir": str(folder / "archive-backups"), "offsite": "s3://wpgate-archive/sites/production",
               "offsite_env": {"AWS_ACCESS_KEY_ID": "WPGATE_S3_KEY", "AWS_SECRET_ACCESS_KEY": "WPGATE_S3_SECRET",
                               "AWS_ENDPOINT_URL": "WPGATE_S3_ENDPOINT"}, "keep_last": 2}
    (folder / "archive-s3").mkdir()
    s3_config = write_config(folder / "archive-s3", {
        "production": site_entry(scene["production"], backup=archive)}, state_dir=str(folder / "state"))
    env = {"WPGATE_S3_ENDPOINT": scene["moto"]}
    result = scene["run"]("backup", "production", "--json", config_path=s3_config, env=env)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    s3_manifest = manifest

    def s3_keys(backup_id: str) -> set[str]:
        listed = s3.list_objects_v2(Bucket="wpgate-archive", Prefix=f"sites/production/{backup_id}/")
        return {item["Key"].rsplit("/", 1)[1] for item in listed.get("Contents", [])}

    listed = {item["Key"].rsplit("/", 1)[1]: item["Size"]
              for item in s3.list_objects_v2(Bucket="wpgate-archive", Prefix="sites/production/")["Contents"]}
    assert {name: listed[name] for name in manifest["parts"]} == {
        name: part["bytes"] for name, part in manifest["parts"].items()}
    assert "manifest.json" in listed and manifest["offsite"] == f"s3://wpgate-archive/sites/production/{manifest['id']}"
    # An off-site part changed in the store: the check finds it (and only it).
    s3.put_object(Bucket="wpgate-archive", Key=f"sites/production/{manifest['id']}/tables.json", Body=b"{}")
    tampered = scene["run"]("restore", manifest["id"], "--verify", config_path=s3_config, env=env)
    assert tampered.returncode == 3 and "off-site tables.json" in tampered.stderr, tampered.stderr
    assert "off-site manifest" not in tampered.stderr
    before = fingerprint(scene["production"])
    refused_restore = scene["run"]("restore", manifest["id"], "--yes", config_path=s3_config, env=env)
    assert refused_restore.returncode == 3, refused_restore.stderr
    assert "cannot be restored" in refused_restore.stderr and "off-site tables.json" in refused_restore.stderr
    assert "Traceback" not in refused_restore.stderr
    assert_unchanged(before, fingerprint(scene["production"]))
    # Over sftp, through the ssh config that pins the second sshd's host key.
    remote_folder = sftp_server.workdir / "archive-offsite"
    archive = {"dir": str(folder / "archive-backups"), "offsite": f"sftp://root@{sftp_server.alias}{remote_folder}",
               "offsite_ssh_config": str(sftp_server.config_path), "keep_last": 1}
    (folder / "archive-sftp").mkdir()
    sftp_config = write_config(folder / "archive-sftp", {
        "production": site_entry(scene["production"], backup=archive)}, state_dir=str(folder / "state"))
    result = scene["run"]("backup", "production", "--json", config_path=sftp_config)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    copy = remote_folder / manifest["id"]
    import hashlib

    assert {name: hashlib.sha256((copy / name).read_bytes()).hexdigest() for name in manifest["parts"]} == {
        name: part["sha256"] for name, part in manifest["parts"].items()}
    assert (copy / "manifest.json").is_file() and not Path(f"{copy}.partial").exists()
    # Retention: one more backup to S3, then keep_last 2 lets the first S3 backup go. The store does not answer:
    # exit 5 and one line, and the backup is left whole on the host and in the store, for the next prune.
    newest = scene["run"]("backup", "production", "--json", config_path=s3_config, env=env)
    assert newest.returncode == 0, newest.stderr
    newest_id, in_sftp, host = json.loads(newest.stdout)["id"], manifest, folder / "archive-backups"
    whole = s3_keys(s3_manifest["id"])
    assert whole == {"manifest.json", *s3_manifest["parts"]}
    closed = {"WPGATE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    failed = scene["run"]("prune", "production", config_path=s3_config, env=closed)
    assert failed.returncode == 5, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert len(errors) == 1 and f"could not remove {s3_manifest['id']}" in errors[0], failed.stderr
    assert "off-site, cannot remove manifest.json" in errors[0] and "Traceback" not in failed.stderr
    assert (host / s3_manifest["id"] / "manifest.json").is_file() and s3_keys(s3_manifest["id"]) == whole
    # Reached: its keys are gone from the store and its folder from the host; the kept backups' copies stay.
    pruned = scene["run"]("prune", "production", "--json", config_path=s3_config, env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert [entry["name"] for entry in json.loads(pruned.stdout)["backups"] if entry.get("removed")] == [
        s3_manifest["id"]]
    assert s3_keys(s3_manifest["id"]) == set() and not (host / s3_manifest["id"]).exists()
    assert s3_keys(newest_id) == {"manifest.json", *json.loads(newest.stdout)["parts"]}
    assert (remote_folder / in_sftp["id"] / "manifest.json").is_file()
    # keep_last 1 with the copy over sftp: the sftp backup goes, its folder in the store with it.
    pruned = scene["run"]("prune", "production", "--json", config_path=sftp_config)
    assert pruned.returncode == 0, pruned.stderr
    document = json.loads(pruned.stdout)
    assert document["problems"] == []
    assert [entry["name"] for entry in document["backups"] if entry.get("removed")] == [in_sftp["id"]]
    assert not (remote_folder / in_sftp["id"]).exists() and not (host / in_sftp["id"]).exists()
    assert (host / newest_id / "manifest.json").is_file()


def test_no_secret_in_any_output_journal_or_report(scene, deployed):
    texts = list(scene["outputs"])
    for path in (scene["folder"] / "state").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode(errors="replace"))
    assert len(texts) > 10
    for secret in SECRETS:
        assert not [text[:80] for text in texts if secret in text], secret
