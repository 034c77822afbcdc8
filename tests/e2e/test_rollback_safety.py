"""Rollback never makes a site worse: run again on whatever a run left, it puts the site back or changes
nothing and says why; it uses only paths of the site's own; it leaves nothing behind on the host; its
SQL files are private from the first byte. Real sites on MariaDB behind nginx; the CDN is a small local
server that speaks Cloudflare's API, or a closed port on loopback when it must be unreachable."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.helpers import (aside_root, assert_one_line_error, assert_unchanged, fingerprint, site_entry, wpgate,
                               wpgate_paused_after, write_config, write_qa)
from tests.support.cdn import CloudflareApi
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e

CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"
FAULTY, FAULTY_BROKEN = FAULTS["fatal_while_rendering"]
OLD = {"wpgate-hello": "1.0.0", FAULTY: "1.1.0"}
NEW = {"wpgate-hello": "1.2.0", FAULTY: FAULTY_BROKEN}
TOKEN = {"WPGATE_TEST_CF_TOKEN": "cf-" + uuid.uuid4().hex}


def closed_port() -> int:
    """A loopback port nothing listens on: a CDN API that cannot be reached."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    """Core 6.4.5 → 6.5.5 (which upgrades the database), then a plugin that cuts the page off while it renders
    (the probe after it stops the run), then wpgate-hello, which the run never reaches."""
    folder = tmp_path_factory.mktemp("rollback-safety")
    staging = bed.create_site("safe-staging", core=CORE_NEW, plugins=OLD)
    staging.install_plugin(FAULTY, FAULTY_BROKEN)
    staging.install_plugin("wpgate-hello", NEW["wpgate-hello"])
    first = production(bed, "safe-plan")
    config = write_config(folder, {"staging": site_entry(staging), "safe-plan": site_entry(first)},
                          state_dir="state")
    manifest = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "safe-plan", "-o", str(manifest), config=config)
    assert result.returncode == 0, result.stderr
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    first.stop()
    return {"folder": folder, "config": config, "manifest": manifest}


def production(bed, name: str):
    return bed.create_site(name, core=CORE_OLD, server="nginx", plugins=OLD)


def with_site(release, name: str, site, **entry) -> Path:
    """The release's config with one more production site, written beside it."""
    document = yaml.safe_load(release["config"].read_text())
    document["sites"][name] = {**site_entry(site), **entry,
                               "backup": {"dir": str(release["folder"] / "backups" / name),
                                          "offsite": str(release["folder"] / "offsite")},
                               "checks": {"window": "1s"}}
    config = release["folder"] / f"{name}.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def deploy(release, config: Path, name: str, *options: str, code: int) -> dict:
    result = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", "--json", *options, config=config,
                    env=TOKEN)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def but_cron(site, print_: dict) -> dict:
    """A fingerprint whose wp_options is compared row by row, but for `cron`: WordPress schedules its own
    events there whenever it loads (wpgate's reads load it), which is not a change of wpgate's."""
    options = next(line for line in print_["tables"].splitlines() if line.split("\t")[0].endswith(".wp_options"))
    rows = site.sql("SELECT option_name, MD5(option_value), autoload FROM wp_options WHERE option_name <> 'cron' "
                    "ORDER BY option_id")
    return {**print_, "tables": print_["tables"].replace(options, "") + rows}


def run_folder(release, run: str) -> Path:
    return release["folder"] / "state" / "runs" / run


def test_rollback_again_after_an_unreachable_cdn_keeps_wordpress_and_then_proves_it(bed, release):
    """The deploy's own rollback puts core back but cannot purge the CDN (exit 5). `wpgate rollback` then,
    as the README says: with the CDN still unreachable it changes nothing and says why; once it answers,
    the rollback is proved. At every step the site is byte for byte and table for table as before."""
    site = production(bed, "safe-cdn")
    before = fingerprint(site)
    # The CDN answers the deploy's check of its token, before any change, then goes away for good.
    with CloudflareApi(TOKEN["WPGATE_TEST_CF_TOKEN"]) as gone:
        cdn = {"cloudflare": {"zone": "zone123", "token_env": "WPGATE_TEST_CF_TOKEN", "api": gone.api}}
        config = with_site(release, "safe-cdn", site, caches=[cdn])
        result = wpgate_paused_after("caches.access", gone.stop, "deploy", str(release["manifest"]), "--to",
                                     "safe-cdn", "--yes", "--json", config=config, env=TOKEN)
    assert result.returncode == 5, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rollback_failed"
    unreachable = {"cloudflare": {**cdn["cloudflare"], "api": f"http://127.0.0.1:{closed_port()}/client/v4"}}
    config = with_site(release, "safe-cdn", site, caches=[unreachable])
    assert any("caches after the rollback" in problem for problem in report["rollback"]["problems"])
    # The run is not over: its copies stay, outside the site's root, which is byte for byte as before.
    assert (aside_root(site) / report["run"]).is_dir()
    assert_unchanged(before, fingerprint(site))

    again = wpgate("rollback", report["run"], "--yes", config=config, env=TOKEN)
    assert again.returncode == 5, again.stderr
    assert "caches after the rollback" in again.stderr
    assert (Path(site.path) / "wp-load.php").exists() and (Path(site.path) / "index.php").exists()
    assert_unchanged(before, fingerprint(site))
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text

    with CloudflareApi(TOKEN["WPGATE_TEST_CF_TOKEN"]) as api:
        config = with_site(release, "safe-cdn", site, caches=[
            {"cloudflare": {**unreachable["cloudflare"], "api": api.api}}])
        proved = wpgate("rollback", report["run"], "--yes", "--json", config=config, env=TOKEN)
        assert proved.returncode == 0, proved.stderr
        assert api.requests, "the CDN was not purged"
    assert json.loads(proved.stdout)["status"] == "rolled_back"
    assert_unchanged(before, fingerprint(site))
    assert not aside_root(site).exists()
    site.stop()


@pytest.fixture(scope="module")
def failed_run(bed, release):
    """A deploy stopped by the faulty plugin after core (with its database upgrade) and that plugin changed,
    and left as it stopped (--no-auto-rollback): `wpgate rollback` has both to put back."""
    site = production(bed, "safe-failed")
    config = with_site(release, "safe-failed", site)
    before = fingerprint(site)
    report = deploy(release, config, "safe-failed", "--no-auto-rollback", code=5)
    assert report["status"] == "rollback_failed"
    journal = run_folder(release, report["run"]) / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    return {"site": site, "config": config, "before": before, "run": report["run"], "events": events}


def test_a_run_record_pointing_elsewhere_is_refused_then_the_true_one_is_rolled_back_leaving_nothing(
        release, failed_run, tmp_path):
    """report.json's `live` and `aside` drive renames and removals on the host: a record edited to name another
    folder is refused (exit 2, one line) and that folder and the site stay as they are. With the true record
    the rollback is proved, leaves nothing on the host, and its SQL files were never readable by others."""
    site, config, run = failed_run["site"], failed_run["config"], failed_run["run"]
    path = run_folder(release, run) / "report.json"
    true_record = path.read_text()
    decoy = tmp_path / "decoy"
    (decoy / "keep").mkdir(parents=True)
    (decoy / "keep" / "data.txt").write_text("not WordPress's")
    changed = fingerprint(site)
    core = Path(site.path)
    for key, value in (("live", str(decoy / "keep")), ("aside", str(decoy / "keep")),
                       ("live", str(core / "wp-content/plugins/../../wp-includes"))):
        document = json.loads(true_record)
        entry = next(u for u in document["updates"] if u["slug"] == FAULTY)
        entry[key] = value
        path.write_text(json.dumps(document))
        result = wpgate("rollback", run, "--yes", config=config, env=TOKEN)
        assert_one_line_error(result, 2, f"plugin {FAULTY} {key} is {value}", "nothing was changed")
        assert (decoy / "keep" / "data.txt").read_text() == "not WordPress's"
        assert_unchanged(changed, fingerprint(site))
    # A slug that climbs out of the plugins folder, its paths edited to agree with it, is not a component's.
    document = json.loads(true_record)
    entry = next(u for u in document["updates"] if u["slug"] == FAULTY)
    climbing = f"{FAULTY}/../../../{decoy.name}"
    entry.update(slug=climbing, live=entry["live"].replace(f"/{FAULTY}", f"/{climbing}"),
                 aside=entry["aside"].replace(f"/{FAULTY}", f"/{climbing}"))
    path.write_text(json.dumps(document))
    assert_one_line_error(wpgate("rollback", run, "--yes", config=config, env=TOKEN), 2,
                          "which is not a component", "nothing was changed")
    assert_unchanged(changed, fingerprint(site))
    document = json.loads(true_record)
    next(u for u in document["updates"] if u["type"] == "core")["aside_names"].append("../../etc")
    path.write_text(json.dumps(document))
    assert_one_line_error(wpgate("rollback", run, "--yes", config=config, env=TOKEN), 2, "not core's own")
    assert_unchanged(changed, fingerprint(site))
    # The folder of the aside copies, read back from the record (and the lock with it), must be one of the site's.
    document = json.loads(true_record)
    assert document["aside"] == {**document["aside"], "folder": str(aside_root(site)), "how": "above_root"}
    document["aside"]["folder"] = str(decoy)
    path.write_text(json.dumps(document))
    assert_one_line_error(wpgate("rollback", run, "--yes", config=config, env=TOKEN), 2,
                          f"its report keeps its copies in '{decoy}'", "nothing was changed")
    assert (decoy / "keep" / "data.txt").read_text() == "not WordPress's" and sorted(decoy.iterdir()) == [decoy / "keep"]
    assert_unchanged(changed, fingerprint(site))

    # The run as an earlier wpgate recorded it: its copies inside wp-content/wpgate-aside, no `aside` record.
    # The new wpgate finds them there, puts them back, and leaves nothing.
    legacy = core / "wp-content" / "wpgate-aside"
    legacy.mkdir(mode=0o700)
    shutil.move(aside_root(site) / run, legacy / run)
    aside_root(site).rmdir()  # the run's folder was all there was in it
    document = json.loads(true_record.replace(f"{aside_root(site)}/{run}/", f"{legacy}/{run}/"))
    del document["aside"]
    assert all(str(legacy) in u["aside"] for u in document["updates"] if u.get("install_began"))
    path.write_text(json.dumps(document))
    result = wpgate("rollback", run, "--yes", "--json", config=config, env=TOKEN)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rolled_back"
    assert_unchanged(failed_run["before"], fingerprint(site))  # wp-content/wpgate-aside/ and all in it gone too
    assert not legacy.exists() and not aside_root(site).exists()
    folder = run_folder(release, run)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    saved = Path(report["database_rollback"]["saved_before_restore"])
    exported = Path(report["database_rollback"]["rows_since_backup"]["file"])
    assert saved.parent == folder and exported.parent == folder
    for sql in (saved, exported):
        assert stat.S_IMODE(sql.stat().st_mode) == 0o600, sql
    failed_run["site"].stop()


def _after_core_is_copied_aside(events: list[dict]) -> int:
    """The number of the journal event after which core's copy and its 11 MB package are on the host and
    nothing was changed yet: the artifact verified there."""
    return next(number for number, event in enumerate(events, 1) if event["event"] == "artifact.verified")


@pytest.mark.parametrize("how", ["failed", "killed then resumed"])
def test_a_run_refused_during_apply_leaves_nothing_on_the_host(bed, release, failed_run, how):
    """Stopped in apply after core was copied aside and uploaded, before the first change: the refusal (exit 3,
    or `wpgate resume` after a kill) leaves production byte for byte as it was, wpgate's folder included."""
    name = "safe-refused" if how == "failed" else "safe-resumed"
    site = production(bed, name)
    config = with_site(release, name, site)
    before = but_cron(site, fingerprint(site))
    point = str(_after_core_is_copied_aside(failed_run["events"]))
    if how == "failed":
        result = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", config=config,
                        env={**TOKEN, "WPGATE_TEST_FAIL_AT": point})
        assert result.returncode == 3, result.stderr
        assert "production was not changed" in result.stderr and "WPGATE_TEST_FAIL_AT" in result.stderr
    else:
        killed = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", config=config,
                        env={**TOKEN, "WPGATE_TEST_KILL_AT": point})
        assert killed.returncode == -9, killed.stderr
        assert aside_root(site).is_dir()  # what the kill left, for resume to clear
        run = sorted((release["folder"] / "state" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)[-1].name
        result = wpgate("resume", run, config=config, env=TOKEN)
        assert result.returncode == 0 and "production was not changed" in result.stderr, result.stderr
    assert_unchanged(before, but_cron(site, fingerprint(site)))
    assert not aside_root(site).exists()
    site.stop()
