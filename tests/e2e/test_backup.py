"""`wpgate backup`, `wpgate restore --verify` and gate 6.2 on real sites and a real MariaDB, locally and over ssh.

Every refusal of the gate is provoked on an otherwise good backup: stale, too old, a part broken in one
copy, no off-site setting, a truncated dump, a dump missing a table. Faults are real: a small tmpfs
fills up, the database server's port is closed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from rich.console import Console

from tests.e2e.helpers import (assert_one_line_error, assert_unchanged, fingerprint, site_entry, wpgate,
                               write_config)
from tests.support.sshd import sshd
from wpgate import backup as backups, config, inventory
from wpgate.bridge import Bridge
from wpgate.gates import GateFailed
from wpgate.gates import backup as gate
from wpgate.deployment import Deployment
from wpgate.session import SiteSession
from wpgate.run import Run
from wpgate.testbed.process import free_port
from wpgate.transports import LocalTransport, for_site

pytestmark = pytest.mark.e2e

PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"}
ODD_NAMES = ["photo été.jpg", "line\nbreak.txt", "back\\slash -> arrow.txt", "space and 'quote'.txt"]


@pytest.fixture(scope="module")
def site(bed):
    """A site with posts, a table of its own with binary data and a trigger, and uploads with awkward names."""
    site = bed.create_site("backup-src", core="6.5.5", plugins=PLUGINS)
    uploads = site.path / "wp-content" / "uploads" / "odd names"
    uploads.mkdir(parents=True)
    for number, name in enumerate(ODD_NAMES):
        (uploads / name).write_bytes(os.urandom(50_000 + number))
    (uploads / "empty").mkdir()
    (site.path / "wp-content" / "uploads" / "link to odd").symlink_to("odd names")
    site.php("""
for ($i = 0; $i < 40; $i++) {
    wp_insert_post(array('post_title' => "Post $i", 'post_content' => str_repeat("words $i ", 200),
                         'post_status' => 'publish'));
}
global $wpdb;
$wpdb->query("CREATE TABLE {$wpdb->prefix}shop_orders (id int AUTO_INCREMENT PRIMARY KEY, item varchar(100), "
             . "receipt blob)");
for ($i = 0; $i < 25; $i++) {
    $wpdb->insert("{$wpdb->prefix}shop_orders", array('item' => "order $i", 'receipt' => random_bytes(64)));
}
$wpdb->query("CREATE TRIGGER wpgate_orders_stamp BEFORE INSERT ON {$wpdb->prefix}shop_orders "
             . "FOR EACH ROW SET NEW.item = CONCAT(NEW.item, '')");
if ($wpdb->last_error) { fwrite(STDERR, $wpdb->last_error); exit(1); }
""")
    return site


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("backup")


def configure(folder: Path, site, name: str = "production", *, ssh=None, **backup_settings) -> Path:
    settings = {"dir": str(folder / "host" / name), "offsite": str(folder / "offsite" / name), **backup_settings}
    settings = {key: value for key, value in settings.items() if value is not None}
    sub = folder / name
    sub.mkdir(exist_ok=True)
    return write_config(sub, {name: site_entry(site, ssh=ssh, backup=settings)}, state_dir="state")


def deployment(config_path: Path, name: str = "production") -> Deployment:
    """What pipeline.deploy hands the gate: settings, site, transport, bridge, run, the inventory before."""
    settings = config.load(config_path)
    site_config = settings.site(name)
    transport = for_site(site_config)
    bridge = Bridge(name, site_config, transport)
    run = Run(settings.state_dir, name, "test-release")
    found = Deployment(settings, SiteSession(name, site_config, transport, bridge), None, run,  # type: ignore[arg-type]
                       Console(file=io.StringIO(), width=200))
    found.before = inventory.read(bridge)
    return found


def take(config_path: Path, name: str = "production") -> backups.Backup:
    settings = config.load(config_path)
    site_config = settings.site(name)
    with for_site(site_config) as transport:
        return backups.take(name, site_config, transport, Bridge(name, site_config, transport))


def rewrite_part(found: backups.Backup, part: str, content: bytes) -> None:
    """Replace one part in both copies and record its new sha256 in both manifests, as if the backup
    had been written that way: only the checks that read the content can tell."""
    manifest = dict(found.manifest)
    manifest["parts"] = {**manifest["parts"], part: {"sha256": hashlib.sha256(content).hexdigest(),
                                                     "bytes": len(content)}}
    text = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    for place in (Path(found.folder), Path(found.offsite)):
        (place / part).write_bytes(content)
        (place / "manifest.json").write_bytes(text)


def assert_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The command failed with `code` and said why in one line (after its progress lines), no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def check(deploy: Deployment, *, require_existing: bool) -> dict:
    """Gate 6.2 on `deploy`, as deploy runs it (with --require-existing-backup or not): its evidence."""
    deploy.require_existing_backup = require_existing
    return gate.run(deploy)


def refused(config_path: Path, *fragments: str) -> str:
    deploy = deployment(config_path)
    with pytest.raises(GateFailed) as failure:
        check(deploy, require_existing=True)
    message = failure.value.message
    for fragment in fragments:
        assert fragment in message, message
    return message


def table_stats(site) -> dict[str, tuple[int, int]]:
    stats = {}
    for table in site.sql("SHOW TABLES").split():
        rows = int(site.sql(f"SELECT COUNT(*) FROM `{table}`"))
        checksum = int(site.sql(f"CHECKSUM TABLE `{table}` EXTENDED").split()[-1])
        stats[table] = (rows, checksum)
    return stats


def owner_only(path: Path) -> list[str]:
    wrong = []
    for item in [path, *path.rglob("*")]:
        mode = stat.S_IMODE(item.lstat().st_mode)
        expected = 0o700 if item.is_dir() else 0o600
        if mode != expected:
            wrong.append(f"{item}: {oct(mode)}")
    return wrong


# --- wpgate backup and wpgate restore --verify --------------------------------------------------------------

def test_backup_and_scratch_restore_round_trip_equal_the_source(site, folder, bed):
    config_path = configure(folder, site, "roundtrip")
    before = fingerprint(site)
    result = wpgate("backup", "roundtrip", "--json", config=config_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert_unchanged(before, fingerprint(site))
    assert re.match(r"^roundtrip-\d{8}-\d{6}-[0-9a-f]{4}$", manifest["id"])
    assert f"backup {manifest['id']} of roundtrip" in result.stderr
    host = Path(manifest["folder"])
    offsite = Path(manifest["offsite"])
    names = {"database.sql.gz", "files.tar.gz", "files.index", "inventory.json", "tables.json", "manifest.json"}
    assert {p.name for p in host.iterdir()} == names == {p.name for p in offsite.iterdir()}
    for name, part in manifest["parts"].items():
        for place in (host, offsite):
            content = (place / name).read_bytes()
            assert hashlib.sha256(content).hexdigest() == part["sha256"] and len(content) == part["bytes"]
    assert owner_only(host) == [] and owner_only(offsite) == []
    assert json.loads((host / "manifest.json").read_text())["id"] == manifest["id"]
    assert json.loads((host / "inventory.json").read_text())["core"]["version"] == "6.5.5"

    # The tables the backup lists are the source's, row for row and checksum for checksum.
    source = table_stats(site)
    tables = json.loads((host / "tables.json").read_text())
    assert {name: (t["rows"], t["checksum"]) for name, t in tables.items()} == source
    assert "wp_shop_orders" in tables and tables["wp_posts"]["rows"] >= 40

    # Every file of the root is in the archive, byte for byte (read here, independently of wpgate).
    archived = {}
    with tarfile.open(host / "files.tar.gz", mode="r|gz") as archive:
        for member in archive:
            content = archive.extractfile(member).read() if member.isfile() else None
            archived[member.name.removeprefix("./")] = hashlib.sha256(content).hexdigest() if content is not None \
                else member.type
    for path in sorted(Path(site.path).rglob("*")):
        relative = path.relative_to(site.path).as_posix()
        assert relative in archived, relative
        if path.is_file() and not path.is_symlink() and relative != "wp-content/debug.log":
            assert archived[relative] == hashlib.sha256(path.read_bytes()).hexdigest(), relative
    assert manifest["files"]["files"] == sum(1 for value in archived.values() if len(value) == 64)

    verify = wpgate("restore", manifest["id"], "--verify", "--json", config=config_path)
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["restorable"] is True and report["problems"] == []
    assert report["compared"]["tables"] == len(source)
    assert report["compared"]["rows"] == sum(rows for rows, _ in source.values())
    assert report["compared"]["files"] == manifest["files"]["files"]
    # The scratch copies are gone.
    assert bed.mariadb.sql("SHOW DATABASES LIKE '%wpgate_verify%'").strip() == ""
    assert [p.name for p in host.parent.iterdir()] == [manifest["id"]]
    assert_unchanged(before, fingerprint(site))


def test_restore_verify_lists_every_problem_and_exits_3(site, folder):
    config_path = configure(folder, site, "broken")
    found = take(config_path, "broken")
    dump = gzip.decompress(Path(found.folder, "database.sql.gz").read_bytes())
    cut = dump[:dump.index(b"CREATE TABLE `wp_posts`")]
    rewrite_part(found, "database.sql.gz", gzip.compress(cut))
    result = wpgate("restore", found.id, "--verify", config=config_path)
    assert result.returncode == 3, result.stderr
    assert "is not restorable" in result.stderr
    assert "the dump is incomplete" in result.stderr
    assert "lacks table(s) the backup lists: wp_posts" in result.stderr
    assert "restored copy (wp_backup_src_wpgate_verify) lacks table(s)" in result.stderr
    assert "Traceback" not in result.stderr
    as_json = wpgate("restore", found.id, "--verify", "--json", config=config_path)
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["restorable"] is False


def test_restore_needs_a_known_backup_id(site, folder):
    config_path = configure(folder, site, "ids")
    assert_one_line_error(wpgate("restore", "nonsense", "--verify", config=config_path), 2, "not a backup id")
    assert_one_line_error(wpgate("restore", "other-20261126-101500-ab12", "--verify", config=config_path), 2,
                          "site other, which")
    assert_one_line_error(wpgate("restore", "ids-20261126-101500-ab12", "--verify", config=config_path), 2,
                          "no backup ids-20261126-101500-ab12")
    assert_one_line_error(wpgate("restore", "ids-20261126-101500-ab12", "--yes", config=config_path), 2,
                          "no backup ids-20261126-101500-ab12")


def test_the_password_is_in_no_log_line_command_or_record(site, folder):
    config_path = configure(folder, site, "secret")
    result = wpgate("-v", "backup", "secret", "--json", config=config_path)
    assert result.returncode == 0, result.stderr
    assert "run on local: sh -c" in result.stderr  # -v logs the commands…
    assert site.db_password not in result.stderr + result.stdout  # …and never the password
    manifest = json.loads(result.stdout)
    for name in ("manifest.json", "inventory.json", "tables.json", "files.index"):
        assert site.db_password not in Path(manifest["folder"], name).read_text()
    verify = wpgate("-v", "restore", manifest["id"], "--verify", "--json", config=config_path)
    assert verify.returncode == 0, verify.stderr
    assert "run on local: sh -c" in verify.stderr and site.db_password not in verify.stderr + verify.stdout

    # Every command wpgate builds for a backup and a restore check carries no password: it travels on stdin.
    class Recording(LocalTransport):
        def __init__(self) -> None:
            self.commands = []
            self.inputs = []

        def run(self, command, **kwargs):
            self.commands.append(command)
            self.inputs.append(kwargs.get("input") or b"")
            return super().run(command, **kwargs)

    settings = config.load(config_path)
    site_config = settings.site("secret")
    transport = Recording()
    bridge = Bridge("secret", site_config, transport)
    taken = backups.take("secret", site_config, transport, bridge)
    assert backups.restore_check(taken, site_config, transport, bridge) == []
    assert len(transport.commands) > 10
    for command in transport.commands:
        shown = " ".join(command.real_argv()) + command.display() + repr(command.real_env())
        assert site.db_password not in shown, command.display()
    # Only the options files, sent on the stdin of the scripts that write them, carry it.
    carriers = [command for command, data in zip(transport.commands, transport.inputs)
                if site.db_password.encode() in data]
    assert len(carriers) == 2 and all(command.argv[:2] == ("sh", "-c") for command in carriers)

    # The gate's journal and report neither.
    deploy = deployment(config_path, "secret")
    check(deploy, require_existing=True)
    deploy.run.finish("complete")
    for name in ("journal.jsonl", "report.json"):
        assert site.db_password not in (deploy.run.folder / name).read_text()


def test_backup_over_ssh(bed, site, folder):
    ssh = sshd(bed)
    config_path = configure(folder, site, "remote", ssh=ssh)
    result = wpgate("backup", "remote", "--json", config=config_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["host"] == f"ssh {ssh.alias}"
    assert owner_only(Path(manifest["folder"])) == [] and owner_only(Path(manifest["offsite"])) == []
    for name, part in manifest["parts"].items():
        assert hashlib.sha256(Path(manifest["offsite"], name).read_bytes()).hexdigest() == part["sha256"]
    verify = wpgate("restore", manifest["id"], "--verify", config=config_path)
    assert verify.returncode == 0, verify.stderr
    assert "is restorable" in verify.stderr
    # Gate 6.2 over ssh accepts it as it is.
    deploy = deployment(config_path, "remote")
    evidence = check(deploy, require_existing=True)
    assert evidence["backup"]["id"] == manifest["id"] and evidence["taken"] is False
    deploy.transport.close()


# --- faults -------------------------------------------------------------------------------------------------

def test_a_database_server_refusing_connections_stops_the_backup(site, folder):
    config_path = configure(folder, site, "nodb")
    wp_config = Path(site.path) / "wp-config.php"
    original = wp_config.read_text()
    closed = f"127.0.0.1:{free_port()}"
    wp_config.write_text(original.replace(f"'{site.db_host}'", f"'{closed}'"))
    try:
        result = wpgate("backup", "nodb", config=config_path)
    finally:
        wp_config.write_text(original)
    assert_error(result, 2, "site nodb (local)", "the database server refuses connections", "DB_HOST")
    host = folder / "host" / "nodb"
    assert not host.exists() or list(host.iterdir()) == []
    assert not (folder / "offsite" / "nodb").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs mounted for the test (needs root, as CI's containers give): a disk that really fills.
    Without one the tests are errors, never skips: CI would be green with the disk-full paths untested."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("the disk-full tests mount a small tmpfs, which needs root (as CI runs): run them as root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full tests ({done.stderr.strip()}): "
                    "the container needs CAP_SYS_ADMIN, as CI's has")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_on_the_host_removes_the_partial_backup(site, folder, small_disk, tmp_path):
    config_path = configure(folder, site, "full", dir=str(small_disk / "backups"))
    before = fingerprint(site)
    private_tmp = tmp_path / "tmp"  # where the options file's private folder goes, watched here
    private_tmp.mkdir()
    result = wpgate("backup", "full", config=config_path, env={"TMPDIR": str(private_tmp)})
    assert_error(result, 2, "is full", "No space left on device", "partial backup was removed")
    assert list((small_disk / "backups").iterdir()) == []
    assert not list((folder / "offsite" / "full").glob("*")) if (folder / "offsite" / "full").exists() else True
    assert list(private_tmp.iterdir()) == [], "the options file's folder was left behind"
    assert_unchanged(before, fingerprint(site))


def test_a_full_off_site_disk_removes_both_copies(site, folder, small_disk):
    config_path = configure(folder, site, "fulloff", offsite=str(small_disk / "offsite"))
    before = fingerprint(site)
    result = wpgate("backup", "fulloff", config=config_path)
    assert_error(result, 2, "off-site copy", "No space left on device")
    assert list((small_disk / "offsite").iterdir()) == []
    assert list((folder / "host" / "fulloff").iterdir()) == []
    assert_unchanged(before, fingerprint(site))


# --- gate 6.2 -----------------------------------------------------------------------------------------------

def test_gate_refuses_without_an_off_site_setting(site, folder):
    config_path = configure(folder, site, "production", offsite=None)
    deploy = deployment(config_path)
    with pytest.raises(GateFailed, match=r"backup\.offsite is not set.*set backup\.dir .* and backup\.offsite"):
        check(deploy, require_existing=False)
    assert not (folder / "host" / "production").exists()


def test_gate_takes_a_backup_when_none_exists_then_accepts_it_as_it_is(site, folder):
    config_path = configure(folder, site, "gated")
    deploy = deployment(config_path, "gated")
    with pytest.raises(GateFailed, match="there is no backup of gated"):
        check(deploy, require_existing=True)

    evidence = check(deploy, require_existing=False)
    assert evidence["taken"] is True and evidence["existing"] is None
    record = deploy.run.backup
    assert record["id"] == evidence["backup"]["id"] and record["verified"] is True
    manifest = Path(record["path"], "manifest.json").read_bytes()
    assert record["sha256"] == hashlib.sha256(manifest).hexdigest() and record["sha256_of"] == "manifest.json"
    assert record["offsite"] == str(folder / "offsite" / "gated" / record["id"])
    deploy.run.finish("complete")
    events = [json.loads(line) for line in (deploy.run.folder / "journal.jsonl").read_text().splitlines()]
    names = [event["event"] for event in events]
    assert names.index("backup.begin") < names.index("backup.done") < names.index("backup.accepted")
    done = events[names.index("backup.done")]
    assert done["id"] == record["id"] and done["sha256"] == record["sha256"]
    report = json.loads((deploy.run.folder / "report.json").read_text())
    assert report["backup"]["id"] == record["id"] and report["backup"]["sha256"] == record["sha256"]

    again = deployment(config_path, "gated")
    evidence = check(again, require_existing=True)
    assert evidence["taken"] is False and evidence["backup"]["id"] == record["id"]
    assert evidence["existing"]["reasons"] == []


def test_gate_refuses_a_backup_older_than_max_age(site, folder):
    config_path = configure(folder, site, "production", max_age="1s")
    take(config_path)
    time.sleep(1.5)
    refused(config_path, "too old", "more than max_age 1s")


def test_gate_refuses_a_backup_taken_before_production_changed_and_takes_a_new_one(site, folder):
    config_path = configure(folder, site, "production")
    old = take(config_path)
    site.php("wp_insert_comment(array('comment_post_ID' => 1, 'comment_content' => 'written after the backup', "
             "'comment_approved' => 1));")
    message = refused(config_path, "stale: production's database changed after the backup", "table wp_comments")
    assert "wp_links" not in message and "wp_users" not in message  # only what changed is named

    deploy = deployment(config_path)
    evidence = check(deploy, require_existing=False)
    assert evidence["taken"] is True and evidence["backup"]["id"] != old.id
    assert "stale" in " ".join(evidence["existing"]["reasons"])

    # A plugin deactivated after the backup: the inventory differs.
    site.deactivate_plugin("wpgate-hello")
    try:
        refused(config_path, "stale: production changed after the backup: plugin wpgate-hello active True → False")
    finally:
        site.activate_plugin("wpgate-hello")


def test_gate_refuses_a_part_broken_in_one_copy(site, folder):
    config_path = configure(folder, site, "production")
    found = take(config_path)
    archive = Path(found.offsite, "files.tar.gz")
    content = bytearray(archive.read_bytes())
    content[len(content) // 2] ^= 0xFF
    archive.write_bytes(bytes(content))
    message = refused(config_path, f"off-site files.tar.gz ({archive}): sha256")
    assert "on the host" not in message  # the host's copy is fine

    found = take(config_path)
    Path(found.folder, "database.sql.gz").write_bytes(b"")
    refused(config_path, "on the host, database.sql.gz: sha256")


def test_gate_refuses_a_truncated_dump(site, folder):
    config_path = configure(folder, site, "production")
    found = take(config_path)
    dump = gzip.decompress(Path(found.folder, "database.sql.gz").read_bytes())
    # Cut off in the middle of the last table's rows, the way a dump client killed mid-way leaves it.
    rewrite_part(found, "database.sql.gz", gzip.compress(dump[:dump.rindex(b"INSERT INTO") + 40]))
    refused(config_path, "the dump is incomplete: it does not end with the dump client's completion line")


def test_gate_refuses_a_dump_missing_a_table(site, folder):
    config_path = configure(folder, site, "production")
    found = take(config_path)
    dump = gzip.decompress(Path(found.folder, "database.sql.gz").read_bytes())
    start = dump.index(b"--\n-- Table structure for table `wp_shop_orders`")
    end = dump.index(b"--\n-- Table structure for table", start + 10)
    rewrite_part(found, "database.sql.gz", gzip.compress(dump[:start] + dump[end:]))
    message = refused(config_path, "the dump lacks table(s) the backup lists: wp_shop_orders")
    assert "incomplete" not in message  # it still ends with the completion line

    # A table production has and no dump of it: a plugin created it after the backup.
    take(config_path)
    site.sql("CREATE TABLE wp_created_since (id int)")
    try:
        refused(config_path, "the dump does not cover production's table(s): wp_created_since")
    finally:
        site.sql("DROP TABLE wp_created_since")


def test_gate_refuses_a_backup_that_does_not_restore(site, folder):
    config_path = configure(folder, site, "production")
    found = take(config_path)
    # A valid, complete-looking dump whose rows differ from what tables.json promised.
    dump = gzip.decompress(Path(found.folder, "database.sql.gz").read_bytes())
    changed = dump.replace(b"Post 3", b"Post X", 1)
    assert changed != dump
    rewrite_part(found, "database.sql.gz", gzip.compress(changed))
    refused(config_path, "not restorable: table wp_posts: same", "another checksum in the restored copy")


def test_restore_database_puts_the_site_database_back(site, folder):
    config_path = configure(folder, site, "production")
    found = take(config_path)
    expected = table_stats(site)
    site.php("""
global $wpdb;
$wpdb->query("CREATE TABLE {$wpdb->prefix}added_later (id int)");
$wpdb->query("DELETE FROM {$wpdb->posts} WHERE post_title LIKE 'Post 1%'");
update_option('blogname', 'changed');
""")
    assert table_stats(site) != expected
    settings = config.load(config_path)
    site_config = settings.site("production")
    transport = LocalTransport()
    bridge = Bridge("production", site_config, transport)
    backups.restore_database(found, site_config, transport, bridge)
    assert table_stats(site) == expected
    assert backups.table_checksums(site_config, transport, bridge) == found.tables


def test_without_the_right_to_create_a_scratch_database_the_check_uses_scratch_tables(bed, site, folder):
    config_path = configure(folder, site, "grants")
    found = take(config_path, "grants")
    pattern = site.db_name.replace("_", "\\_") + "\\_wpgate\\_%"
    hosts = ("127.0.0.1", "localhost")
    bed.mariadb.sql("".join(f"REVOKE ALL PRIVILEGES ON `{pattern}`.* FROM '{site.db_user}'@'{h}';" for h in hosts))
    try:
        result = wpgate("restore", found.id, "--verify", "--json", config=config_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["compared"]["scratch"]["prefix"].startswith("wpgatev_")
        assert not [t for t in site.sql("SHOW TABLES").split() if t.startswith("wpgatev_")]
        assert not list(Path(found.folder).parent.glob(".verify-*")), "the scratch folder was left behind"

        # A database the user may use, named in the config, serves instead; it is emptied afterwards.
        bed.mariadb.sql("CREATE DATABASE backup_scratch;" + "".join(
            f"GRANT ALL ON `backup_scratch`.* TO '{site.db_user}'@'{h}';" for h in hosts))
        bed.mariadb.sql("CREATE TABLE backup_scratch.left_over (id int)")
        config_path = configure(folder, site, "grants", verify_database="backup_scratch")
        result = wpgate("restore", found.id, "--verify", "--json", config=config_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["compared"]["tables"] == len(found.tables)
        assert bed.mariadb.sql("SHOW TABLES FROM backup_scratch").strip() == ""
    finally:
        bed.mariadb.sql("DROP DATABASE IF EXISTS backup_scratch;" + "".join(
            f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO '{site.db_user}'@'{h}';" for h in hosts))


def test_a_second_backup_of_an_unchanged_site_reuses_the_archive(site, folder):
    config_path = configure(folder, site, "reuse")
    first = take(config_path, "reuse")
    assert first.manifest["files"]["reused_from"] is None and len(first.manifest["files"]["tree_sha256"]) == 64
    second = take(config_path, "reuse")
    assert second.manifest["files"]["reused_from"] == first.id
    for name in ("files.tar.gz", "files.index"):
        assert second.parts[name]["sha256"] == first.parts[name]["sha256"]
        # One copy on each side, linked: no time spent compressing, no space spent twice.
        assert Path(second.folder, name).stat().st_ino == Path(first.folder, name).stat().st_ino
        assert Path(second.offsite, name).stat().st_ino == Path(first.offsite, name).stat().st_ino
    assert owner_only(Path(second.folder)) == [] and owner_only(Path(second.offsite)) == []
    result = wpgate("restore", second.id, "--verify", config=config_path)
    assert result.returncode == 0, result.stderr

    # A file changed since: archived afresh, holding the change.
    upload = Path(site.path, "wp-content", "uploads", "odd names", ODD_NAMES[0])
    upload.write_bytes(upload.read_bytes()[::-1])
    third = take(config_path, "reuse")
    assert third.manifest["files"]["reused_from"] is None
    assert third.parts["files.tar.gz"]["sha256"] != second.parts["files.tar.gz"]["sha256"]

    # An archive damaged since its backup is never carried into a new one.
    archive = Path(third.folder, "files.tar.gz")
    damaged = bytearray(archive.read_bytes())
    damaged[100] ^= 0xFF
    archive.write_bytes(bytes(damaged))
    fourth = take(config_path, "reuse")
    assert fourth.manifest["files"]["reused_from"] is None
    assert backups.verify_copies(fourth, config.load(config_path).site("reuse"), LocalTransport()) == []
