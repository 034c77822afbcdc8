"""Production as it really is: visitors request pages during deploys, and the web server's PHP keeps the code it
compiled (OPcache). After each update the web server's OPcache is reset before maintenance is lifted (core), the
probe runs and the next update starts: visitors get a complete page of one release or WordPress's maintenance
503 (core's alone: plugins and themes are swapped in by rename), a probe never judges stale code, and the old
versions wpgate keeps aside meanwhile answer no request."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import site_entry, wpgate, wpgate_paused_after, write_config, write_qa
from tests.e2e.visitors import MAINTENANCE, RELEASE, Component, Target, Visitors, journal_near
from wpgate.testbed import fixtures

pytestmark = pytest.mark.e2e

ACTIVE = ["wpgate-hello", "wpgate-notes", "wpgate-faulty"]
OLD_PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-faulty": "1.1.0"}
NEW_PLUGINS = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-faulty": "1.1.0"}
OLD_THEMES = {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}
NEW_THEMES = {"wpgate-parent": "1.1.0", "wpgate-child": "1.1.0"}
BROKEN_SLUG, BROKEN_VERSION = fixtures.FAULTS["fatal_while_rendering"]

# The pages show every component of the release, in manifest order (core, plugins, themes parent first).
COMPONENTS = [Component("core", "wordpress", "6.1.9", "6.5.5"),
              Component("plugin", "wpgate-hello", "1.0.0", "1.2.0"),
              Component("plugin", "wpgate-notes", "1.0.0", "1.1.0"),
              Component("theme", "wpgate-parent", "1.0.0", "1.1.0"),
              Component("theme", "wpgate-child", "1.0.0", "1.1.0")]
# The home page, a page the updated plugins render (their footer), and an updated plugin's stylesheet.
TARGETS = [Target("/"), Target("/sample-page/"),
           Target("/wp-content/plugins/wpgate-hello/assets/hello.css",
                  markers={v: f"/* wpgate-hello {v} */" for v in ("1.0.0", "1.2.0")})]
SETUPS = {"nginx-validate-1": {"server": "nginx"},
          "nginx-validate-0": {"server": "nginx", "opcache_validate_timestamps": False},
          "php-s": {"server": "php"}}


@pytest.fixture(scope="module")
def releases(bed, tmp_path_factory):
    """Production sites at 6.1.9 with the old plugins and themes, one per web server setup, and two approved
    releases: the healthy one (core 6.5.5, two plugins, both themes) and a broken one (wpgate-hello, then
    wpgate-faulty at a version that dies half-way through a page, then a theme)."""
    folder = tmp_path_factory.mktemp("visitors")
    staging = bed.create_site("visit-staging", core="6.5.5", plugins=NEW_PLUGINS, themes=NEW_THEMES,
                              theme="wpgate-child", active_plugins=ACTIVE)
    broken = bed.create_site("visit-broken", core="6.1.9", plugins={**NEW_PLUGINS, "wpgate-notes": "1.0.0"},
                             themes={**OLD_THEMES, "wpgate-child": "1.1.0"}, theme="wpgate-child",
                             active_plugins=["wpgate-hello", "wpgate-notes"])
    # Installed on staging but never activated there, so its QA did not see what production (where it is
    # active) will: pages cut off half-way.
    broken.install_plugin(BROKEN_SLUG, BROKEN_VERSION)
    productions = {name: bed.create_site(f"visit-{name}", core="6.1.9", plugins=OLD_PLUGINS, themes=OLD_THEMES,
                                         theme="wpgate-child", active_plugins=ACTIVE, **options)
                   for name, options in SETUPS.items()}
    config = write_config(folder, {"staging": site_entry(staging), "broken-staging": site_entry(broken),
                                   **{name: site_entry(site) for name, site in productions.items()}},
                          state_dir="state")
    qa = write_qa(folder)
    paths = {}
    for name, source in (("healthy", "staging"), ("broken", "broken-staging")):
        paths[name] = folder / f"{name}.yml"
        planned = wpgate("plan", "--from", source, "--to", "nginx-validate-1", "-o", str(paths[name]), config=config)
        assert planned.returncode == 0, planned.stderr
        approved = wpgate("approve", str(paths[name]), "--qa", str(qa), "--by", "Ana", config=config)
        assert approved.returncode == 0, approved.stderr
    return {"config": config, "productions": productions, **paths}


def deploy_with_visitors(releases, name: str, release: str, *, probe_aside: bool = False) -> tuple[dict, Visitors]:
    """The deploy, with visitors throughout. With `probe_aside`, a canary PHP file is put in wpgate-hello's live
    folder first (where it answers), and the deploy is stopped right after its first swap (wpgate-hello's) to
    request the canary, now in the old version kept aside, wherever a visitor might find it."""
    site = releases["productions"][name]
    state = releases["config"].parent / "state"
    argv = ("deploy", str(releases[release]), "--to", name, "--yes", "--json")
    if probe_aside:
        (site.plugins_dir / "wpgate-hello" / "canary.php").write_text(CANARY)
        status, body = raw_get(site.url, "/wp-content/plugins/wpgate-hello/canary.php")
        assert status == 200 and CANARY_RAN in body, (status, body[:300])  # PHP in a plugin's folder runs
    with Visitors(site.url, COMPONENTS, TARGETS) as visitors:
        if probe_aside:
            result = wpgate_paused_after("swapped", lambda: assert_no_aside_copy_answers(site, state), *argv,
                                         config=releases["config"], timeout=600)
        else:
            result = wpgate(*argv, config=releases["config"], timeout=600)
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    journal = state / "runs" / report["run"] / "journal.jsonl"
    return {"result": result, "report": report, "journal": journal}, visitors


# A PHP file of the old wpgate-hello: what it prints when it runs, and its source when it is served as text.
CANARY = "<?php echo 'wpgate-aside-' . 'canary-ran';\n"
CANARY_RAN, CANARY_SOURCE = "wpgate-aside-canary-ran", "'wpgate-aside-' . 'canary-ran'"


def raw_get(base_url: str, path: str) -> tuple[int, str]:
    """One GET of exactly `path`, sent as written (no client folds `..` away)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def assert_no_aside_copy_answers(site, state: Path) -> None:
    """With the deploy stopped right after wpgate-hello's swap: its old version, canary included, waits in the
    run's folder, outside the web root, and no request runs or shows it, be it at the folder wpgate used inside
    wp-content before, through `..` out of the root (plain or encoded), or at the plugin's own place."""
    run = max((state / "runs").iterdir(), key=lambda path: path.stat().st_mtime)
    report = json.loads((run / "report.json").read_text())
    folder = Path(report["aside"]["folder"])
    kept = folder / run.name / "plugins" / "wpgate-hello" / "canary.php"
    assert kept.read_text() == CANARY  # the old version is there, whole
    for path in (f"/wp-content/wpgate-aside/{run.name}/plugins/wpgate-hello/canary.php",
                 f"/../{folder.name}/{run.name}/plugins/wpgate-hello/canary.php",
                 f"/%2e%2e/{folder.name}/{run.name}/plugins/wpgate-hello/canary.php",
                 f"/wp-content/../../{folder.name}/{run.name}/plugins/wpgate-hello/canary.php",
                 "/wp-content/plugins/wpgate-hello/canary.php"):
        status, body = raw_get(site.url, path)
        assert CANARY_RAN not in body and CANARY_SOURCE not in body, (path, status, body[:300])
    assert Path(site.path).resolve() not in folder.resolve().parents, folder  # so no other URL leads there


def assert_no_unplanned_answer(visitors: Visitors, journal) -> None:
    tally = visitors.tally
    counts = tally.counts
    assert counts[RELEASE] > 0, tally.summary()
    assert tally.unplanned == [], "\n".join([tally.summary(), "what the deploy did then:",
                                              *journal_near(journal, tally.unplanned)])
    assert counts[RELEASE] + counts[MAINTENANCE] == len(tally.answers), tally.summary()
    # The visitors saw the release through: the old site first, the new one at the end.
    pages = sorted((a for a in tally.answers if a.verdict == RELEASE and not a.path.endswith(".css")),
                   key=lambda a: a.at)
    assert pages[0].detail == "6.1.9 1.0.0 1.0.0 1.0.0 1.0.0", tally.summary()
    assert pages[-1].detail == "6.5.5 1.2.0 1.1.0 1.1.0 1.1.0", tally.summary()


def test_on_a_host_that_never_revalidates_a_broken_plugin_is_named_at_its_own_update_and_a_healthy_release_completes(
        releases):
    """php-fpm with opcache.validate_timestamps=0 runs what it compiled until OPcache is reset. Without a reset
    after each update, the broken plugin's probe would judge its old code and pass, and the healthy release's
    probe after core would meet 6.1.9's compiled files beside 6.5.5's."""
    name = "nginx-validate-0"
    broken = wpgate("deploy", str(releases["broken"]), "--to", name, "--yes", "--json", config=releases["config"],
                    timeout=600)
    assert broken.returncode == 4, broken.stderr
    report = json.loads(broken.stdout)
    assert [(u["slug"], u["status"]) for u in report["updates"]] == [
        ("wpgate-hello", "rolled_back"), (BROKEN_SLUG, "rolled_back"), ("wpgate-child", "pending")]
    failed = [gate for gate in report["gates"] if gate["status"] == "failed"]
    assert [gate["step"] for gate in failed] == ["6.3"], failed
    evidence = failed[0]["evidence"]
    assert evidence["update"] == 1 and evidence["culprit"] == f"plugin {BROKEN_SLUG} 1.1.0 → {BROKEN_VERSION}", evidence
    shown = wpgate("report", report["run"], config=releases["config"])
    assert shown.returncode == 0, shown.stderr
    assert f"plugin {BROKEN_SLUG} 1.1.0 → {BROKEN_VERSION}" in shown.stdout + shown.stderr

    outcome, visitors = deploy_with_visitors(releases, name, "healthy")
    assert outcome["result"].returncode == 0, outcome["result"].stderr
    assert outcome["report"]["status"] == "complete"
    applied = {entry["slug"]: entry for entry in
               next(g for g in outcome["report"]["gates"] if g["step"] == "6.3")["evidence"]["applied"]}
    assert "opcache_reset() ran in the web server's PHP (fpm-fcgi)" in applied["wordpress"]["web_opcache"]
    assert_no_unplanned_answer(visitors, outcome["journal"])
    assert_maintenance_for_core_only(visitors)

    # And back, on request: the rollback puts core back as apply brought it in, behind WordPress's maintenance
    # page with the web server's OPcache reset before it is lifted; plugins and themes by rename.
    site = releases["productions"][name]
    with Visitors(site.url, COMPONENTS, TARGETS) as visitors:
        rolled = wpgate("rollback", outcome["report"]["run"], "--yes", config=releases["config"], timeout=600)
    assert rolled.returncode == 0, rolled.stderr
    tally = visitors.tally
    assert tally.unplanned == [], "\n".join([tally.summary(), "what the rollback did then:",
                                              *journal_near(outcome["journal"], tally.unplanned)])
    pages = sorted((a for a in tally.answers if a.verdict == RELEASE and not a.path.endswith(".css")),
                   key=lambda a: a.at)
    assert pages[0].detail == "6.5.5 1.2.0 1.1.0 1.1.0 1.1.0", tally.summary()
    assert pages[-1].detail == "6.1.9 1.0.0 1.0.0 1.0.0 1.0.0", tally.summary()
    events = [json.loads(line) for line in outcome["journal"].read_text().splitlines()]
    after = [(e["event"], e.get("type")) for e in events[next(i for i, e in enumerate(events)
                                                              if e["event"] == "rollback.begin"):]]
    core = after.index(("put_back.begin", "core"))
    assert ("maintenance_on.done", None) in after[:core], after  # not only a window visitors happened to miss
    # The drains, the deploy's and the rollback's, asked php-fpm which requests were running, rather than wait
    # a fixed time.
    drains = [e["drain"] for e in events if e["event"] in ("install.done", "maintenance_on.done") and "drain" in e]
    assert [d["how"] for d in drains if d["how"] != "on already"] == ["fpm-fcgi", "fpm-fcgi"], drains
    assert after.index(("web_opcache.done", "core")) < after.index(("maintenance_off.begin", None)), after


def assert_maintenance_for_core_only(visitors: Visitors) -> None:
    """Plugins and themes are swapped in: once a page shows the first plugin's new version (core was applied
    before it), no visitor gets the maintenance page again."""
    after = visitors.maintenance_after(2)
    assert after == [], "\n".join([visitors.tally.summary(), "maintenance after core:",
                                    *(f"  {answer.at:7.2f}s {answer.path}" for answer in after[:5])])


@pytest.mark.parametrize("name", ["nginx-validate-1", "php-s"])
def test_visitors_get_no_unplanned_answer_during_a_healthy_deploy(releases, name):
    """Core, two plugins and two themes, with visitors throughout: every answer is a complete page of one
    release or WordPress's maintenance 503, and that page is core's alone (0 s for plugins and themes).
    `php -S` keeps OPcache's defaults (timestamps checked every 2 s). Right after the first plugin is swapped
    in, its old version, kept aside, answers no request: nginx + php-fpm (running as the files' owner, with
    no rule for wpgate's folders) and `php -S` serve nothing of it."""
    outcome, visitors = deploy_with_visitors(releases, name, "healthy", probe_aside=True)
    assert outcome["result"].returncode == 0, outcome["result"].stderr
    assert_no_unplanned_answer(visitors, outcome["journal"])
    assert visitors.tally.counts[MAINTENANCE] > 0, visitors.tally.summary()  # core's own maintenance, at least
    assert_maintenance_for_core_only(visitors)
    # Core's drain asked the web server which requests were still running rather than wait a fixed time:
    # php-fpm's scoreboard, or the built-in server's processes each holding one of the drain's requests.
    events = [json.loads(line) for line in outcome["journal"].read_text().splitlines()]
    drains = [e["drain"]["how"] for e in events if e["event"] == "install.done" and "drain" in e]
    assert drains == [{"nginx-validate-1": "fpm-fcgi", "php-s": "cli-server"}[name]], drains
    site = releases["productions"][name]
    assert not (site.plugins_dir / "wpgate-hello" / "canary.php").exists()  # went with the old version
    assert not Path(outcome["report"]["aside"]["folder"]).exists()  # and that, once the run was complete
