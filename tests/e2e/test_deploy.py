"""plan → approve → deploy with the installed `wpgate`, on real sites: the happy path, and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.helpers import (aside_root, assert_rolled_back, assert_unchanged, but_caches,
                               fingerprint, site_entry, wpgate, wpgate_json, write_config, write_qa)
from tests.e2e.receivers import webhook_receiver
from tests.support.report_schema import assert_valid_report
from tests.support.sshd import sshd
from wpgate.testbed import fixtures

pytestmark = pytest.mark.e2e

OLD_PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0", "wpgate-shop": "1.0.0"}
NEW_PLUGINS = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.0.0", "wpgate-shop": "2.0.0"}
OLD_THEMES = {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}
NEW_THEMES = {"wpgate-parent": "1.1.0", "wpgate-child": "1.1.0"}


@pytest.fixture(scope="module")
def staging(bed):
    site = bed.create_site("deploy-staging", core="6.5.5", plugins=NEW_PLUGINS, themes=NEW_THEMES,
                           theme="wpgate-child", active_plugins=["wpgate-hello", "wpgate-notes", "wpgate-shop"])
    return site


def production_site(bed, name: str, core: str = "6.1.9"):
    return bed.create_site(name, core=core, server="nginx", plugins=OLD_PLUGINS, themes=OLD_THEMES,
                           theme="wpgate-child", active_plugins=["wpgate-hello", "wpgate-notes", "wpgate-shop"])


@pytest.fixture(scope="module")
def planned(tmp_path_factory, bed, staging):
    """A production at 6.1.9 with the old versions, a config, and a plan + approval against staging."""
    folder = tmp_path_factory.mktemp("deploy")
    production = production_site(bed, "deploy-prod")
    refusals = production_site(bed, "deploy-refusals")
    ssh = sshd(bed)
    config = write_config(folder, {
        "staging": site_entry(staging),
        "production": site_entry(production),
        "refusals": site_entry(refusals),
        "refusals-ssh": site_entry(refusals, ssh=ssh),
    }, state_dir="state")
    release = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "config": config, "release": release, "production": production,
            "refusals": refusals, "plan_output": result.stderr}


def approved_copy(planned, name: str) -> Path:
    """An approved copy of the planned release (approval writes into the file it approves)."""
    path = planned["folder"] / name
    shutil.copy(planned["release"], path)
    qa = write_qa(planned["folder"])
    result = wpgate("approve", str(path), "--qa", str(qa), "--by", "Ana Tester", config=planned["config"])
    assert result.returncode == 0, result.stderr
    return path


def test_plan_lists_every_difference_in_the_required_order(planned):
    manifest = yaml.safe_load(planned["release"].read_text())
    assert manifest["wpgate"] == 1 and "approval" not in manifest
    assert [(u["type"], u["slug"], u["from"], u["to"]) for u in manifest["updates"]] == [
        ("core", "wordpress", "6.1.9", "6.5.5"),
        # Plugins in the order staging's files changed, which the test bed wrote in catalogue order.
        ("plugin", "wpgate-hello", "1.0.0", "1.2.0"),
        ("plugin", "wpgate-notes", "1.0.0", "1.1.0"),
        ("plugin", "wpgate-shop", "1.0.0", "2.0.0"),
        ("theme", "wpgate-parent", "1.0.0", "1.1.0"),
        ("theme", "wpgate-child", "1.0.0", "1.1.0"),
    ]
    state = planned["config"].parent / "state"
    for update in manifest["updates"]:
        artifact = state / update["artifact"]["path"]
        assert artifact.is_file() and len(update["artifact"]["sha256"]) == 64
    output = planned["plan_output"]
    assert "not replicated: plugin akismet 5.0.2 is only on production" in output
    assert "not replicated: theme twentytwentyfour" in output


def test_the_same_tree_gives_the_same_artifact(planned):
    again = planned["folder"] / "again.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(again), config=planned["config"])
    assert result.returncode == 0, result.stderr
    first = yaml.safe_load(planned["release"].read_text())["updates"]
    second = yaml.safe_load(again.read_text())["updates"]
    assert [u["artifact"] for u in first] == [u["artifact"] for u in second]


def test_core_artifact_holds_core_files_only(planned):
    import zipfile
    manifest = yaml.safe_load(planned["release"].read_text())
    core = planned["config"].parent / "state" / manifest["updates"][0]["artifact"]["path"]
    names = zipfile.ZipFile(core).namelist()
    assert "wordpress/wp-includes/version.php" in names and "wordpress/wp-login.php" in names
    assert not [n for n in names if n == "wordpress/wp-config.php" or n.startswith("wordpress/wp-content")]


def test_happy_path_deploys_exactly_the_release(planned, staging):
    release = approved_copy(planned, "happy.yml")
    production = planned["production"]
    # WordPress offers an update the release does not hold: it must stay untouched.
    production.php("set_site_transient('update_plugins', (object) array('last_checked' => time(), 'response' => "
                   "array('wpgate-seo/wpgate-seo.php' => (object) array('slug' => 'wpgate-seo', "
                   "'plugin' => 'wpgate-seo/wpgate-seo.php', 'new_version' => '3.1.0', "
                   "'package' => '/nonexistent.zip'))));")
    result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=planned["config"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "complete"
    assert_valid_report(report)
    assert [(g["step"], g["status"]) for g in report["gates"]] == [
        ("6.1", "passed"), ("6.2", "passed"), ("6.3", "passed"), ("6.4", "passed"),
        ("6.5", "passed"), ("6.6", "passed"), ("6.7", "passed")]
    backup = report["backup"]
    assert backup["id"].startswith("production-") and len(backup["sha256"]) == 64
    assert Path(backup["offsite"]).is_dir() and Path(backup["path"]).is_dir()
    assert {u["status"] for u in report["updates"]} == {"applied"}

    after = wpgate_json("inventory", "production", config=planned["config"])
    ours = wpgate_json("inventory", "staging", config=planned["config"])
    assert after["core"]["version"] == "6.5.5" == ours["core"]["version"]
    assert after["core"]["db_version"] == ours["core"]["db_version"]
    plugins = {p["slug"]: p for p in after["plugins"]}
    for slug, version in NEW_PLUGINS.items():
        assert plugins[slug]["version"] == version
    assert plugins["wpgate-seo"]["version"] == "3.0.0"  # offered by WordPress, not in the release
    assert plugins["akismet"]["version"] == "5.0.2"      # only on production: left alone
    assert {s for s, p in plugins.items() if p["active"]} == {"wpgate-hello", "wpgate-notes", "wpgate-shop"}
    themes = {t["slug"]: t for t in after["themes"]}
    assert themes["wpgate-child"]["version"] == "1.1.0" and themes["wpgate-child"]["active"]
    assert themes["wpgate-parent"]["version"] == "1.1.0"
    assert "twentytwentyfour" not in themes  # core's new bundled theme is not part of the release

    page = httpx.get(production.url + "/", timeout=30)
    assert page.status_code == 200
    assert fixtures.plugin_marker("wpgate-hello", "1.2.0") in page.text
    assert fixtures.theme_marker("wpgate-child", "1.1.0") in page.text
    assert 'content="WordPress 6.5.5"' in page.text
    assert not (Path(production.path) / ".maintenance").exists()
    assert production.php("echo get_option('wpgate_shop_db_version');").strip().endswith("2")

    # What was kept aside during the run was outside the web root, and is gone once it is complete, and
    # wpgate's folder with it.
    assert report["aside"]["how"] == "above_root" and report["aside"]["folder"] == str(aside_root(production))
    apply_gate = next(g for g in report["gates"] if g["step"] == "6.3")["evidence"]
    assert apply_gate["old_versions_kept"].startswith(f"{aside_root(production)}: outside the web root")
    assert not aside_root(production).exists()
    assert not (Path(production.path) / "wp-content/wpgate-aside").exists()
    # Plugins and themes were swapped in with no maintenance; core alone had WordPress's maintenance page.
    assert [a["maintenance"].split(":")[0] for a in apply_gate["applied"]] == [
        "on while the core files changed"] + ["none"] * 5
    # wpgate-shop's upgrader_process_complete hook ran once its new files were live (it reads its own header).
    assert production.php("echo get_option('wpgate_shop_upgraded_by_upgrader');").strip().endswith("2.0.0")

    run_folder = planned["config"].parent / "state" / "runs" / report["run"]
    journal = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    events = [event["event"] for event in journal]
    assert events[0] == "run.start" and events[-1] == "run.end"
    assert events.count("install.begin") == 6 == events.count("apply.done")
    assert events.count("aside.done") == 1 == events.count("maintenance_off.done")  # core's
    assert events.count("swapped") == 5
    assert events.index("aside.done") < events.index("install.begin") < events.index("maintenance_off.done")
    # After each swap the web server's OPcache is reset before the update is verified and probed.
    for number, event in enumerate(journal):
        if event["event"] == "swapped":
            assert journal[number - 1] == {**journal[number - 1], "event": "web_opcache.done",
                                           "index": event["index"]}, journal[number - 1]
    assert events[-2] == "clean_up.done"
    assert json.loads((run_folder / "report.json").read_text())["status"] == "complete"
    status = wpgate_json("status", report["run"], config=planned["config"])
    assert status["status"] == "complete"

    # The same release again: production is already at `to`, which is drift from `from`.
    before = fingerprint(production)
    again = wpgate("deploy", str(release), "--to", "production", "--yes", config=planned["config"])
    assert again.returncode == 3, again.stderr
    assert "drift" in again.stderr
    assert_unchanged(before, fingerprint(production))


# --- refusals: each leaves production byte-for-byte as it was ------------------------------------------

def refused(planned, release: Path, code: int, *fragments: str, site: str = "refusals",
            options: tuple[str, ...] = ("--yes",)) -> str:
    production = planned["refusals"]
    before = fingerprint(production)
    result = wpgate("deploy", str(release), "--to", site, *options, config=planned["config"])
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert_unchanged(before, fingerprint(production))
    return result.stderr


def edited(planned, name: str, change) -> Path:
    path = approved_copy(planned, name)
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_refused_when_not_approved(planned):
    path = planned["folder"] / "unapproved.yml"
    shutil.copy(planned["release"], path)
    refused(planned, path, 3, "not approved")


def test_refused_when_edited_after_approval(planned):
    def change(document):
        document["updates"][1]["to"] = "1.1.0"
    refused(planned, edited(planned, "edited.yml", change), 3, "edited after approval")


def test_refused_when_the_qa_record_was_edited_after_approval(planned):
    def change(document):
        document["qa"]["checks"][0]["status"] = "failed"
    text = refused(planned, edited(planned, "qa-edited.yml", change), 3, "edited after approval")
    assert "'home page renders' is failed" in text


def test_refused_when_an_artifact_was_tampered_with(planned):
    path = approved_copy(planned, "tampered.yml")
    document = yaml.safe_load(path.read_text())
    artifact = planned["config"].parent / "state" / document["updates"][2]["artifact"]["path"]
    original = artifact.read_bytes()
    try:
        artifact.write_bytes(original + b"\0")
        refused(planned, path, 3, "does not match its sha256")
    finally:
        artifact.write_bytes(original)


def test_refused_on_drift_of_one_plugin(planned):
    production = planned["refusals"]
    production.install_plugin("wpgate-notes", "2.0.0")
    try:
        refused(planned, approved_copy(planned, "drift.yml"), 3,
                "drift: production has plugin wpgate-notes at 2.0.0, the release expects 1.0.0")
    finally:
        production.install_plugin("wpgate-notes", "1.0.0")


def test_a_theme_before_a_plugin_is_refused(planned):
    path = planned["folder"] / "misordered.yml"
    document = yaml.safe_load(planned["release"].read_text())
    document["updates"].append(document["updates"].pop(1))
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    refused(planned, path, 2, "the order is core, then plugins, then themes")


@pytest.mark.parametrize("field, value", [("slug", "../../../tmp/x"), ("slug", "a;touch /tmp/pwned"),
                                          ("to", "1.2.0$(touch /tmp/pwned)"), ("from", "1.0.0 && id")])
def test_path_or_shell_characters_are_refused(planned, field, value):
    """Refused as the manifest is read, before any run starts: no value of it reaches a command. (That a
    value which does reach one is passed as one argument, never through a shell, is test_command's.)"""
    path = planned["folder"] / "hostile.yml"
    document = yaml.safe_load(planned["release"].read_text())
    document["updates"][1][field] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    runs = planned["config"].parent / "state" / "runs"
    runs_before = set(runs.iterdir()) if runs.exists() else set()
    refused(planned, path, 2, f"updates[1].{field}")
    assert (set(runs.iterdir()) if runs.exists() else set()) == runs_before  # no run was even started


def test_malformed_yaml_is_refused(planned):
    path = planned["folder"] / "broken.yml"
    path.write_text(planned["release"].read_text() + "\n  - {type: plugin, slug: [\n")
    refused(planned, path, 2, "not valid YAML")


def test_a_forged_approval_with_a_failed_check_is_refused(planned):
    from wpgate import release as release_module
    path = planned["folder"] / "forged.yml"
    shutil.copy(planned["release"], path)
    loaded = release_module.load(path)
    qa = {"checks": [{"name": "checkout works", "required": True, "status": "pending"}], "issues": [], "notes": []}
    release_module.save(loaded.approved(by="mallory", at="2026-11-26T00:00:00Z", qa=qa), path)
    refused(planned, path, 3, "'checkout works' is pending")


def test_dry_run_changes_nothing(planned):
    path = approved_copy(planned, "dry.yml")
    text = refused(planned, path, 0, "dry run: nothing was changed", "1. core wordpress: 6.1.9 → 6.5.5",
                   options=("--dry-run",))
    assert "6.1 approval: passed" in text


def test_refusals_over_ssh_too(planned):
    def change(document):
        document["updates"][1]["to"] = "1.1.0"
    refused(planned, edited(planned, "edited-ssh.yml", change), 3, "edited after approval", site="refusals-ssh")


def test_without_yes_and_without_a_terminal_nothing_changes(planned):
    refused(planned, approved_copy(planned, "unconfirmed.yml"), 2, "pass --yes", options=())


# --- approve refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("qa_change, reason", [
    ({"checks": [{"name": "checkout works", "required": True, "status": "failed"}]}, "is failed"),
    ({"checks": [{"name": "checkout works", "required": True, "status": "pending"}]}, "is pending"),
    ({"notes": [{"text": "check the footer later", "status": "open"}]}, "still open"),
    ({"issues": [{"id": 3, "title": "menu", "status": "open"}]}, "is open, not resolved"),
    ({"issues": [{"id": 4, "title": "menu", "status": "resolved"}]}, "no resolution"),
])
def test_approve_refuses_an_unclean_qa_record(planned, qa_change, reason):
    path = planned["folder"] / "to-approve.yml"
    shutil.copy(planned["release"], path)
    original = path.read_text()
    qa = write_qa(planned["folder"], **qa_change)
    result = wpgate("approve", str(path), "--qa", str(qa), "--by", "Ana", config=planned["config"])
    assert result.returncode == 3, result.stderr
    assert reason in result.stderr
    assert path.read_text() == original


def test_approve_refuses_when_staging_changed_since_the_plan(planned, staging):
    path = planned["folder"] / "staging-changed.yml"
    shutil.copy(planned["release"], path)
    qa = write_qa(planned["folder"])
    hello = staging.plugins_dir / "wpgate-hello" / "wpgate-hello.php"
    original = hello.read_text()
    try:
        hello.write_text(original + "\n// edited on staging after the plan\n")
        result = wpgate("approve", str(path), "--qa", str(qa), "--by", "Ana", config=planned["config"])
        assert result.returncode == 3, result.stderr
        assert "wpgate-hello 1.2.0 files changed since the plan" in result.stderr
    finally:
        hello.write_text(original)


def test_approval_is_frozen(planned):
    path = approved_copy(planned, "twice.yml")
    qa = write_qa(planned["folder"])
    result = wpgate("approve", str(path), "--qa", str(qa), "--by", "Bo", config=planned["config"])
    assert result.returncode == 3 and "already approved by Ana Tester" in result.stderr


def test_a_whole_deploy_over_ssh(bed, staging, tmp_path):
    """Plan, approve and deploy with production reached through a real sshd (core already equal)."""
    production = bed.create_site("deploy-ssh", core="6.5.5", server="nginx", plugins=OLD_PLUGINS,
                                 themes=OLD_THEMES, theme="wpgate-child",
                                 active_plugins=["wpgate-hello", "wpgate-notes", "wpgate-shop"])
    ssh = sshd(bed)
    config = write_config(tmp_path, {"staging": site_entry(staging), "production": site_entry(production, ssh=ssh)},
                          state_dir="state")
    release = tmp_path / "release.yml"
    planned_now = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), "--json",
                         config=config)
    assert planned_now.returncode == 0, planned_now.stderr
    manifest = yaml.safe_load(release.read_text())
    assert json.loads(planned_now.stdout) == manifest
    assert [u["type"] for u in manifest["updates"]] == ["plugin", "plugin", "plugin", "theme", "theme"]
    qa = write_qa(tmp_path)
    approved = wpgate("approve", str(release), "--qa", str(qa), "--by", "Ana", "--json", config=config)
    assert approved.returncode == 0 and json.loads(approved.stdout)["approval"]["by"] == "Ana"
    # The deploy is a user's script of the library (DESIGN.md's Library): it prints nothing, asks nothing, and
    # returns the report; its on_event callback hears each journal event. The same release again is refused
    # (drift), as a result, not an exception.
    deployed = script_deploy(tmp_path, config, release)
    assert (deployed["stdout"], deployed["stderr"]) == ("", ""), deployed["returncode"]
    assert deployed["returncode"] == 0
    result = deployed["first"]
    assert (result["status"], result["exit_code"], result["exit_code_type"]) == ("complete", 0, "ExitStatus")
    run_folder = tmp_path / "state" / "runs" / result["run_id"]
    assert result["report"]["run"] == result["run_id"] and result["report"]["status"] == "complete"
    assert result["report"] == json.loads((run_folder / "report.json").read_text())
    assert_valid_report(result["report"])
    assert_valid_report(deployed["again"]["report"])
    journal = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    assert result["events"] == journal and journal[0]["event"] == "run.start" and journal[-1]["event"] == "run.end"
    again = deployed["again"]
    assert (again["status"], again["exit_code"]) == ("refused", 3) and "drift" in again["message"]
    assert again["events"][-1] == {**again["events"][-1], "event": "run.end", "status": "refused"}
    plugins = {p["slug"]: p for p in wpgate_json("inventory", "production", config=config)["plugins"]}
    assert {slug: plugins[slug]["version"] for slug in NEW_PLUGINS} == NEW_PLUGINS
    # The database was snapshotted over ssh too, before and after apply: the shop's migration is the release's.
    report = wpgate_json("status", result["run_id"], config=config)
    assert report == result["report"]
    assert set(report["database_snapshots"]) == {"database-before.json.gz", "database-after-changes.json.gz"}
    assert all("error" not in taken for taken in report["database_snapshots"].values()), report["database_snapshots"]
    assert "table wp_wpgate_shop_orders created" in report["database_changes"]
    production.stop()


LIBRARY_SCRIPT = """
import json, sys
import wpgate

config, release, output = sys.argv[1:]
project = wpgate.Project.load(config)
found = {}
for name in ("first", "again"):
    events = []
    result = project.deploy(release, to="production", on_event=events.append)
    found[name] = {"status": result.status, "exit_code": int(result.exit_code),
                   "exit_code_type": type(result.exit_code).__name__, "run_id": result.run_id,
                   "report": result.report, "message": result.message, "events": events}
with open(output, "w") as stream:
    json.dump(found, stream)
"""


def script_deploy(folder: Path, config: Path, release: Path) -> dict:
    """Two deploys of `release` by a Python script using the library, in a process of its own: what it printed
    (stdout, stderr) and what each deploy returned."""
    import subprocess
    import sys

    output = folder / "library-result.json"
    done = subprocess.run([sys.executable, "-c", LIBRARY_SCRIPT, str(config), str(release), str(output)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    found = json.loads(output.read_text()) if output.exists() else {}
    return {"stdout": done.stdout, "stderr": done.stderr, "returncode": done.returncode, **found}


@pytest.fixture(scope="module")
def faulty_release(bed, tmp_path_factory):
    """A release whose second update has a fault QA missed: the page is cut off while it renders, with
    status 200. The probe after that update sees it."""
    from wpgate.testbed.fixtures import FAULTS

    slug, broken = FAULTS["fatal_while_rendering"]
    folder = tmp_path_factory.mktemp("faulty")
    staging = bed.create_site("fail-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0", slug: "1.1.0"})
    staging.install_plugin(slug, broken)
    productions = {mode: bed.create_site(f"fail-{mode}", core="6.5.5", server="nginx",
                                         plugins={"wpgate-hello": "1.0.0", slug: "1.1.0"})
                   for mode in ("auto", "manual", "later")}
    entries = {mode: site_entry(site) for mode, site in productions.items()}
    entries["later"]["notify"] = {"webhook": {"url_env": "WPGATE_TEST_WEBHOOK"}, "on": ["rolled_back", "rollback_failed"]}
    config = write_config(folder, {"staging": site_entry(staging), **entries}, state_dir="state")
    release = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "auto", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    return {"slug": slug, "config": config, "release": release, "productions": productions, "folder": folder}


def test_a_failure_after_a_change_is_rolled_back_and_proved(faulty_release):
    slug, config = faulty_release["slug"], faulty_release["config"]
    production = faulty_release["productions"]["auto"]
    before = but_caches(production, fingerprint(production))
    result = wpgate("deploy", str(faulty_release["release"]), "--to", "auto", "--yes", "--json", config=config)
    assert result.returncode == 4, result.stderr
    assert "answered 200 but the page is incomplete" in result.stderr
    assert "rolled back: production is proved back at its pre-deployment state" in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rolled_back"
    assert_valid_report(report)
    assert {u["slug"]: u["status"] for u in report["updates"]} == {"wpgate-hello": "rolled_back", slug: "rolled_back"}
    assert report["rollback"]["attempted"] and report["rollback"]["problems"] == []
    plugins = {p["slug"]: p for p in wpgate_json("inventory", "auto", config=config)["plugins"]}
    assert (plugins["wpgate-hello"]["version"], plugins[slug]["version"]) == ("1.0.0", "1.1.0")
    assert plugins[slug]["active"] and plugins["wpgate-hello"]["active"]
    page = httpx.get(production.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text
    assert fixtures.plugin_marker("wpgate-hello", "1.0.0") in page.text
    run_folder = faulty_release["config"].parent / "state" / "runs" / report["run"]
    events = [json.loads(line)["event"] for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    assert events.count("put_back.done") == 2 and "rollback.done" in events
    # The release changed nothing in the database: it stays (WordPress's caches and cron schedule as they are now).
    assert report["database_rollback"]["database"] == "kept" and "restore_database.begin" not in events
    assert_rolled_back(before, but_caches(production, fingerprint(production)))  # proved without wpgate's inventory


def test_without_auto_rollback_it_says_what_changed_and_how_to_undo_it(faulty_release):
    import subprocess

    slug, config = faulty_release["slug"], faulty_release["config"]
    production = faulty_release["productions"]["manual"]
    result = wpgate("deploy", str(faulty_release["release"]), "--to", "manual", "--yes", "--no-auto-rollback",
                    "--json", config=config)
    assert result.returncode == 5, result.stderr
    assert "production WAS changed and was NOT rolled back" in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rollback_failed"
    assert_valid_report(report)
    # The probe after each update (gate 6.6's checks) stops the run at the update that broke the page.
    assert report["gates"][-1] == {**report["gates"][-1], "step": "6.3", "status": "failed"}
    assert report["gates"][-1]["evidence"]["culprit"] == f"plugin {slug} 1.1.0 → 2.0.2"
    assert report["backup"]["id"]
    undo = report["rollback"]["undo"]
    assert [line.split(":")[0] for line in undo] == [f"plugin {slug}", "plugin wpgate-hello"]
    for line in undo:
        subprocess.run(["sh", "-c", line.split(": ", 1)[1]], check=True)
    plugins = {p["slug"]: p for p in wpgate_json("inventory", "manual", config=config)["plugins"]}
    assert plugins[slug]["version"] == "1.1.0" and plugins[slug]["active"]
    assert httpx.get(production.url + "/", timeout=30).status_code == 200


def test_a_broken_staging_is_not_planned_and_a_broken_production_is_not_touched(bed, tmp_path):
    from wpgate.testbed.fixtures import FAULTS

    slug, broken = FAULTS["fatal_on_load"]
    broken_site = bed.create_site("broken-site", core="6.5.5", plugins={"wpgate-hello": "1.0.0", slug: "1.1.0"})
    healthy = bed.create_site("healthy-site", core="6.5.5", plugins={"wpgate-hello": "1.2.0", slug: "1.1.0"})
    broken_site.install_plugin(slug, broken)  # still active: it now fails on every load
    config = write_config(tmp_path, {"broken": site_entry(broken_site), "healthy": site_entry(healthy)},
                          state_dir="state")
    release = tmp_path / "release.yml"
    result = wpgate("plan", "--from", "broken", "--to", "healthy", "-o", str(release), config=config)
    assert result.returncode == 3 and "staging (broken) is broken" in result.stderr
    assert not release.exists()

    # The other way round: production is the broken one, and deploy refuses before touching it.
    assert wpgate("plan", "--from", "healthy", "--to", "broken", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(tmp_path)), "--by", "Ana",
                  config=config).returncode == 0
    before = fingerprint(broken_site)
    result = wpgate("deploy", str(release), "--to", "broken", "--yes", config=config)
    assert result.returncode == 3 and "already broken before any change" in result.stderr
    assert_unchanged(before, fingerprint(broken_site))
    for site in (broken_site, healthy):
        site.stop()


def test_one_run_per_site_a_stale_lock_is_named_and_broken_only_on_request(planned):
    import os
    import socket
    import subprocess

    production = planned["refusals"]
    gone = subprocess.Popen(["true"])
    gone.wait()
    release = approved_copy(planned, "locked.yml")
    # A run of an earlier wpgate kept its lock inside wp-content: a deploy sees it there too.
    legacy = Path(production.path) / "wp-content/wpgate-aside/lock"
    legacy.parent.mkdir(parents=True)
    try:
        legacy.write_text(json.dumps({"run": "20261126-000000-beef", "host": socket.gethostname(), "pid": gone.pid,
                                      "since": "2026-11-26T00:00:00Z"}))
        refused(planned, release, 3, "locked by run 20261126-000000-beef", "stale", str(legacy))
    finally:
        shutil.rmtree(legacy.parent)
    lock = aside_root(production) / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.write_text(json.dumps({"run": "20261126-000000-dead", "host": socket.gethostname(), "pid": gone.pid,
                                    "since": "2026-11-26T00:00:00Z"}))
        text = refused(planned, release, 3, "locked by run 20261126-000000-dead", "stale",
                       "wpgate resume 20261126-000000-dead")
        lock.write_text(json.dumps({"run": "20261126-000000-live", "host": socket.gethostname(), "pid": os.getpid(),
                                    "since": "2026-11-26T00:00:00Z"}))
        refused(planned, release, 3, "locked by run 20261126-000000-live", "wait for it to end")
        # Broken on request: the run goes on (and here stops at approval, the manifest being edited).
        document = yaml.safe_load(release.read_text())
        document["updates"][1]["to"] = "1.1.0"
        release.write_text(yaml.safe_dump(document, sort_keys=False))
        text = refused(planned, release, 3, "edited after approval", options=("--yes", "--break-lock"))
        assert "locked by" not in text
        assert not lock.exists()  # released at the end of the run that broke it
    finally:
        lock.unlink(missing_ok=True)


def test_wpgate_rollback_puts_a_failed_run_back_and_proves_it(faulty_release, monkeypatch):
    slug, config = faulty_release["slug"], faulty_release["config"]
    production = faulty_release["productions"]["later"]
    before = but_caches(production, fingerprint(production))
    with webhook_receiver() as hook:  # the deploy and the rollback each announce how the run ended
        monkeypatch.setenv("WPGATE_TEST_WEBHOOK", hook.url)
        result = wpgate("deploy", str(faulty_release["release"]), "--to", "later", "--yes", "--no-auto-rollback",
                        "--json", config=config)
        assert result.returncode == 5, result.stderr
        run = json.loads(result.stdout)["run"]
        assert f"wpgate rollback {run}" in result.stderr
        unconfirmed = wpgate("rollback", run, config=config)
        assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
        rolled = wpgate("rollback", run, "--yes", "--json", config=config)
        assert rolled.returncode == 0, rolled.stderr
    assert [posted["json"]["wpgate"]["status"] for posted in hook] == ["rollback_failed", "rolled_back"]
    report = json.loads(rolled.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert_valid_report(report)
    plugins = {p["slug"]: p["version"] for p in wpgate_json("inventory", "later", config=config)["plugins"]}
    assert (plugins["wpgate-hello"], plugins[slug]) == ("1.0.0", "1.1.0")
    assert httpx.get(production.url + "/", timeout=30).status_code == 200
    # The release changed nothing in the database: it was kept (WordPress's caches and cron as they are now).
    assert report["database_rollback"]["database"] == "kept"
    assert_rolled_back(before, but_caches(production, fingerprint(production)))
    again = wpgate("rollback", run, "--yes", config=config)
    assert again.returncode == 0 and "pre-deployment state already" in again.stderr
    assert wpgate("rollback", "../../etc", "--yes", config=config).returncode == 2


def test_a_core_update_and_a_migration_that_then_fail_are_rolled_back_with_the_database(bed, tmp_path):
    """Core 6.1.9 → 6.5.5 upgrades the database and wpgate-shop 2.1.0 migrates it, then breaks the
    pages: rollback puts the files back and the database back from the run's backup, proved."""
    staging = bed.create_site("db-staging", core="6.5.5", plugins={"wpgate-shop": "2.1.0"})
    production = bed.create_site("db-prod", core="6.1.9", server="nginx", plugins={"wpgate-shop": "1.0.0"})
    config = write_config(tmp_path, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    tables_before = sorted(production.sql("SHOW TABLES").split())
    before = fingerprint(production)
    db_version_before = production.php("echo get_option('db_version');").strip().splitlines()[-1]
    release = tmp_path / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(tmp_path)), "--by", "Ana",
                  config=config).returncode == 0
    result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert report["database_rollback"]["backup"] == report["backup"]["id"]
    saved = Path(report["database_rollback"]["saved_before_restore"])
    assert "wpgate_shop_orders" in saved.read_text()  # the migrated state, kept in the run's folder
    inventory = wpgate_json("inventory", "production", config=config)
    assert inventory["core"]["version"] == "6.1.9"
    assert str(inventory["core"]["db_version"]) == db_version_before
    assert {p["slug"]: p["version"] for p in inventory["plugins"]}["wpgate-shop"] == "1.0.0"
    assert sorted(production.sql("SHOW TABLES").split()) == tables_before
    page = httpx.get(production.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text and 'content="WordPress 6.1.9"' in page.text
    assert_rolled_back(before, fingerprint(production))
    for site in (staging, production):
        site.stop()


def test_no_offsite_backup_configured_is_refused_before_any_change(planned, tmp_path):
    config = yaml.safe_load(planned["config"].read_text())
    del config["sites"]["refusals"]["backup"]["offsite"]
    other = tmp_path / "wpgate.yml"
    other.write_text(yaml.safe_dump({**config, "state_dir": str(planned["config"].parent / "state")}))
    release = approved_copy(planned, "no-offsite.yml")
    production = planned["refusals"]
    before = fingerprint(production)
    for options in (("--yes",), ("--dry-run",)):
        result = wpgate("deploy", str(release), "--to", "refusals", *options, config=other)
        assert result.returncode == 3, result.stderr
        assert "backup.offsite" in result.stderr
    assert_unchanged(before, fingerprint(production))


def test_rows_visitors_wrote_before_a_rollback_are_put_back_or_exported_and_named(bed, tmp_path):
    """wpgate-shop 2.1.0 migrates the database (its orders table), then breaks the front end; the run is left
    unrolled (--no-auto-rollback) while visitors comment, register, order and an editor changes an option.
    `wpgate rollback` puts the database back from the backup, puts back what visitors wrote in the tables
    the release did not create or migrate, and exports the rest (the orders table), named in the report."""
    staging = bed.create_site("rows-staging", core="6.5.5", plugins={"wpgate-shop": "2.1.0"})
    production = bed.create_site("rows-prod", core="6.5.5", plugins={"wpgate-shop": "1.0.0"})
    config = write_config(tmp_path, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    release = tmp_path / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(tmp_path)), "--by", "Ana",
                  config=config).returncode == 0
    before = fingerprint(production)
    tables_before = sorted(production.sql("SHOW TABLES").split())
    result = wpgate("deploy", str(release), "--to", "production", "--yes", "--no-auto-rollback", "--json",
                    config=config)
    assert result.returncode == 5, result.stderr
    run = json.loads(result.stdout)["run"]
    production.php("""
        wp_insert_comment(['comment_post_ID' => 1, 'comment_author' => 'Visitor Vera',
                           'comment_content' => 'Written while the site was broken', 'comment_approved' => 1]);
        wp_insert_user(['user_login' => 'newcustomer', 'user_pass' => 'x-Pass-1234', 'user_email' => 'c@example.com']);
        update_option('blogdescription', 'Changed by an editor meanwhile');
        global $wpdb;
        $wpdb->insert($wpdb->prefix . 'wpgate_shop_orders', ['item' => 'order 1001', 'created_at' => '2026-11-26 10:00:00']);
    """)
    comments_before = production.sql("SELECT COUNT(*) FROM wp_comments").strip()

    rolled = wpgate("rollback", run, "--yes", "--json", config=config)
    assert rolled.returncode == 0, rolled.stderr
    report = json.loads(rolled.stdout)
    assert report["database_rollback"]["database"] == "restored"
    assert "table wp_wpgate_shop_orders created" in report["database_rollback"]["release_changes"]
    exported = report["database_rollback"]["rows_since_backup"]
    named = {entry["table"]: entry for entry in exported["tables"]}
    assert (named["wp_comments"]["new"], named["wp_comments"]["changed"], named["wp_comments"]["removed"]) == (1, 0, 0)
    assert named["wp_comments"]["put_back"] == 1 and named["wp_users"]["put_back"] == 1
    assert any("Visitor Vera" in example for example in named["wp_comments"]["examples"])
    assert named["wp_users"]["new"] == 1 and "newcustomer" in " ".join(named["wp_users"]["examples"])
    assert named["wp_options"]["changed"] >= 1
    assert any("blogdescription" in example for example in named["wp_options"]["examples"])
    assert named["wp_wpgate_shop_orders"]["created_by_run"] and named["wp_wpgate_shop_orders"]["rows"] == 2
    assert "Visitor Vera" in rolled.stderr and "rows-since-backup.sql" in rolled.stderr
    # The database is the backup's again, with what visitors wrote put back; the shop's orders are exported.
    assert production.sql("SELECT COUNT(*) FROM wp_comments").strip() == comments_before
    assert "newcustomer" in production.sql("SELECT user_login FROM wp_users")
    assert production.sql("SELECT option_value FROM wp_options WHERE option_name = 'blogdescription'").strip() == \
        "Changed by an editor meanwhile"
    assert not production.sql("SELECT 1 FROM wp_options WHERE option_name = 'wpgate_shop_db_version'").strip()
    assert sorted(production.sql("SHOW TABLES").split()) == tables_before
    assert_rolled_back(before, {**fingerprint(production), "tables": before["tables"]})  # files as before the run
    sql_file = Path(exported["file"])
    assert oct(sql_file.stat().st_mode & 0o777) == "0o600"
    text = sql_file.read_text()
    assert "order 1001" in text and "Written while the site was broken" not in text and "DROP TABLE" not in text
    production.sql(text)
    assert production.sql("SELECT COUNT(*) FROM wp_wpgate_shop_orders").strip() == "2"
    assert f"{production.db_name}_wpgate_rows" not in bed.database().sql("SHOW DATABASES")
    for site in (staging, production):
        site.stop()


def test_wpgate_rollback_of_a_complete_run_restores_from_its_backup(bed, tmp_path):
    """A complete core + plugin + theme run is put back later, its files taken from the run's backup
    (the aside copies are gone), the database restored, the site proved as before; a site changed
    since the run is refused, unchanged."""
    staging = bed.create_site("later-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0"},
                              themes={"wpgate-parent": "1.1.0"})
    production = bed.create_site("later-prod", core="6.4.5", server="nginx", plugins={"wpgate-hello": "1.0.0"},
                                 themes={"wpgate-parent": "1.0.0"})
    config = write_config(tmp_path, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    before = wpgate_json("inventory", "production", config=config)
    files_and_tables = fingerprint(production)
    release = tmp_path / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(tmp_path)), "--by", "Ana",
                  config=config).returncode == 0
    result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["run"]
    assert not (aside_root(production) / run).exists()

    # Changed since the run completed: refused, nothing touched.
    production.install_plugin("wpgate-hello", "1.1.0")
    changed = fingerprint(production)
    refused_text = wpgate("rollback", run, "--yes", config=config)
    assert refused_text.returncode == 3 and "changed since run" in refused_text.stderr
    assert "wpgate-hello" in refused_text.stderr
    assert_unchanged(changed, fingerprint(production))
    production.install_plugin("wpgate-hello", "1.2.0")

    rolled = wpgate("rollback", run, "--yes", "--json", config=config)
    assert rolled.returncode == 0, rolled.stderr
    report = json.loads(rolled.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert_valid_report(report)
    statuses = {u["slug"]: u["status"] for u in report["updates"]}
    assert {"wordpress", "wpgate-hello", "wpgate-parent"} <= set(statuses)
    assert set(statuses.values()) == {"rolled_back"}
    after = wpgate_json("inventory", "production", config=config)
    assert (after["core"], after["plugins"], after["themes"]) == (before["core"], before["plugins"], before["themes"])
    page = httpx.get(production.url + "/", timeout=30)
    assert page.status_code == 200 and 'content="WordPress 6.4.5"' in page.text
    assert not aside_root(production).exists()
    assert_rolled_back(files_and_tables, fingerprint(production))
    again = wpgate("rollback", run, "--yes", config=config)
    assert again.returncode == 0 and "pre-deployment state already" in again.stderr
    assert_restore_puts_the_backup_back(production, config, report["backup"]["id"], before, files_and_tables)
    for site in (staging, production):
        site.stop()


def assert_restore_puts_the_backup_back(production, config: Path, backup_id: str, before: dict, files: dict) -> None:
    """`wpgate restore BACKUP_ID` (archive engine) on the site changed since its backup: a plugin updated, a
    visitor's comment, an option changed. --dry-run names them and changes nothing; the restore puts the plugin's
    files and the option back, keeps the comment, proves the result and keeps a record of it."""
    production.install_plugin("wpgate-hello", "1.1.0")
    production.sql("INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, "
                   "comment_date_gmt) VALUES (1, 'Visitor', 'Written after the backup', NOW(), UTC_TIMESTAMP())")
    title = production.sql("SELECT option_value FROM wp_options WHERE option_name = 'blogname'").strip()
    production.sql("UPDATE wp_options SET option_value = 'Defaced' WHERE option_name = 'blogname'")
    changed = fingerprint(production)
    state = config.parent / "state"
    dry = wpgate("restore", backup_id, "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    assert "puts back plugin wpgate-hello 1.0.0 (now 1.1.0)" in dry.stderr
    assert "wp_comments" in dry.stderr and "wp_options" in dry.stderr and "could proceed" in dry.stderr
    assert_unchanged(changed, fingerprint(production))
    assert not (state / "restores").exists()
    result = wpgate("restore", backup_id, "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "complete" and record["restore"]["backup"] == backup_id
    after = wpgate_json("inventory", "production", config=config)
    assert (after["core"], after["plugins"], after["themes"]) == (before["core"], before["plugins"], before["themes"])
    assert_unchanged({"files": files["files"], "tables": ""}, {"files": fingerprint(production)["files"], "tables": ""})
    assert "Written after the backup" in production.sql("SELECT comment_content FROM wp_comments")
    assert production.sql("SELECT option_value FROM wp_options WHERE option_name = 'blogname'").strip() == title
    database = record["database_rollback"]
    assert database["database"] == "restored" and Path(database["saved_before_restore"]).is_file()
    comments = next(t for t in database["rows_since_backup"]["tables"] if t["table"] == "wp_comments")
    assert comments["new"] == 1 and comments["put_back"] == 1
    folder = state / "restores" / record["run"]
    events = [json.loads(line)["event"] for line in (folder / "journal.jsonl").read_text().splitlines()]
    for event in ("maintenance_on.done", "aside_from_backup.done", "put_back.done", "web_opcache.done",
                  "restore_database.done", "put_back_rows.done", "maintenance_off.done"):
        assert event in events, event
    assert json.loads((folder / "report.json").read_text())["status"] == "complete"
    page = httpx.get(production.url + "/", timeout=30)
    assert page.status_code == 200 and fixtures.plugin_marker("wpgate-hello", "1.0.0") in page.text
