"""Gate 6.5 (caches) and `wpgate purge` with the installed `wpgate`, on a production behind real Varnish,
nginx + php-fpm with OPcache not checking timestamps, and the fixture page-cache plugin; the CDNs are
small local servers that speak Cloudflare's, Fastly's and Bunny's purge APIs, and a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from tests.e2e.helpers import assert_unchanged, fingerprint, site_entry, wpgate, write_config, write_qa
from tests.support.cdn import BunnyApi, CloudflareApi, FastlyApi, WebhookReceiver, secrets_in
from tests.support.sshd import sshd
from wpgate import config as settings, transports
from wpgate.bridge import Bridge
from wpgate.caches import CacheSite
from wpgate.caches.opcache import Opcache
from wpgate.config import OpcacheConfig
from wpgate.session import SiteSession
from wpgate.testbed import fixtures
from wpgate.testbed.bed import http_get

pytestmark = pytest.mark.e2e

OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-pagecache": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-pagecache": "1.0.0"}
TOKENS = {"WPGATE_TEST_CF_TOKEN": "cf-" + uuid.uuid4().hex, "WPGATE_TEST_FASTLY_KEY": "fastly-" + uuid.uuid4().hex,
          "WPGATE_TEST_BUNNY_KEY": "bunny-" + uuid.uuid4().hex, "WPGATE_TEST_HOOK_TOKEN": "hook-" + uuid.uuid4().hex}


def production(bed, name: str):
    """nginx + php-fpm keeping its compiled code whatever changes on disk, Varnish in front, a page cache."""
    return bed.create_site(name, core="6.5.5", server="nginx", opcache_validate_timestamps=False, varnish=True,
                           plugins=OLD)


@pytest.fixture(scope="module")
def apis():
    servers = {"cloudflare": CloudflareApi(TOKENS["WPGATE_TEST_CF_TOKEN"]),
               "fastly": FastlyApi(TOKENS["WPGATE_TEST_FASTLY_KEY"], resource="svc42"),
               "bunny": BunnyApi(TOKENS["WPGATE_TEST_BUNNY_KEY"], resource="4711"),
               "webhook": WebhookReceiver(TOKENS["WPGATE_TEST_HOOK_TOKEN"])}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def caches_config(site, apis) -> list[dict]:
    return [
        {"cloudflare": {"zone": "zone123", "token_env": "WPGATE_TEST_CF_TOKEN", "api": apis["cloudflare"].api}},
        {"varnish": {"url": site.url}},
        {"fastly": {"service": "svc42", "token_env": "WPGATE_TEST_FASTLY_KEY", "api": apis["fastly"].api}},
        {"bunny": {"pull_zone": 4711, "token_env": "WPGATE_TEST_BUNNY_KEY", "api": apis["bunny"].api}},
        {"webhook": {"url": apis["webhook"].url + "/purge", "token_env": "WPGATE_TEST_HOOK_TOKEN"}},
    ]


@pytest.fixture(scope="module")
def layered(bed, tmp_path_factory, apis):
    folder = tmp_path_factory.mktemp("caches")
    staging = bed.create_site("caches-staging", core="6.5.5", plugins=NEW)
    sites = {"production": production(bed, "caches-prod"), "failing": production(bed, "caches-failing")}
    entries = {name: site_entry(site, caches=caches_config(site, apis), checks={"pages": ["/", "/sample-page/"]})
               for name, site in sites.items()}
    # Behind Varnish too, but the config does not say so: nothing purges it.
    sites["unpurged"] = production(bed, "caches-unpurged")
    entries["unpurged"] = site_entry(sites["unpurged"])
    sites["resumed"] = production(bed, "caches-resumed")
    entries["resumed"] = site_entry(sites["resumed"], caches=[{"varnish": {"url": sites["resumed"].url}}])
    # Production again, reached through ssh: its Varnish is purged from its own host.
    entries["over-ssh"] = site_entry(sites["production"], ssh=sshd(bed),
                                     caches=[{"varnish": {"url": sites["production"].url}}])
    config = write_config(folder, {"staging": site_entry(staging), **entries}, state_dir="state")
    release = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config).returncode == 0
    yield {"config": config, "release": release, "folder": folder, **sites}
    for site in (staging, *sites.values()):
        site.stop()


def run(*args: str, config: Path, tokens: dict[str, str] = TOKENS):
    return wpgate(*args, config=config, env=tokens)


def warm(site) -> None:
    """Visit the pages as visitors do, so that Varnish and the page cache hold them."""
    for page in ("/", "/sample-page/"):
        for _ in range(2):
            assert http_get(site.url + page)[0] == 200
    assert http_get(site.url + "/")[1]["X-Cache"] == "HIT"


def no_token_in(*texts: str) -> None:
    for text in texts:
        assert secrets_in(text, *TOKENS.values()) == [], "a token leaked"


@pytest.fixture(scope="module")
def deployed(layered, apis):
    """Production deployed once, its caches warm before: the run the tests below read (each of them
    may run alone or in any order)."""
    site, config = layered["production"], layered["config"]
    warm(site)
    result = run("-v", "deploy", str(layered["release"]), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    # What each API received last is the deploy's purge: kept before other tests purge again.
    return {"result": result, "report": json.loads(result.stdout),
            "last_requests": {name: api.requests[-1] for name, api in apis.items()}}


def test_dry_runs_list_the_layers_in_order_and_purge_nothing(layered, apis):
    # "failing" is at the release's `from` versions whenever no test is deploying to it (its run is rolled back).
    seen = {name: len(api.requests) for name, api in apis.items()}
    result = run("purge", "failing", "--dry-run", "--json", config=layered["config"])
    assert result.returncode == 0, result.stderr
    lines = json.loads(result.stdout)["layers"]
    assert [line.split(": ")[0].split(". ", 1)[1] for line in lines] == [
        "object cache", "page cache wpgate Page Cache", "opcache", "varnish", "cloudflare", "fastly", "bunny",
        "webhook", "verify"]
    assert "PURGE " + layered["failing"].url + "/.* (X-Purge-Method: regex)" in lines[3]
    deploy = run("deploy", str(layered["release"]), "--to", "failing", "--dry-run", "--json",
                 config=layered["config"])
    assert deploy.returncode == 0, deploy.stderr
    gate = {g["step"]: g for g in json.loads(deploy.stdout)["gates"]}["6.5"]
    assert gate["status"] == "skipped" and gate["evidence"]["layers"] == lines
    assert "The caches gate would purge, in this order:" in deploy.stderr
    # The deploy's dry run checks each CDN's credentials with its read-only call, and purges nothing.
    sent = {name: [(r.method, r.path) for r in api.requests[seen[name]:]] for name, api in apis.items()}
    assert sent == {"cloudflare": [("GET", "/client/v4/user/tokens/verify")], "fastly": [("GET", "/tokens/self")],
                    "bunny": [("GET", "/pullzone/4711")], "webhook": []}
    checked = {held["check"]: held for held in gate["evidence"]["preconditions"]}
    assert checked["cloudflare credentials"]["status"] == "passed"
    assert "may purge everything on service svc42" in checked["fastly credentials"]["detail"]
    assert "reads pull zone 4711 (wpgate-test)" in checked["bunny credentials"]["detail"]
    assert checked["varnish access"]["status"] == checked["webhook access"]["status"] == "not checked"
    assert "✔ cloudflare credentials: the token in $WPGATE_TEST_CF_TOKEN is valid and active" in deploy.stderr
    no_token_in(deploy.stdout, deploy.stderr)


def test_a_cdn_credential_refused_by_its_read_only_call_fails_the_dry_run_and_purges_nothing(layered, apis):
    site = layered["failing"]
    before = fingerprint(site)
    seen = {name: len(api.requests) for name, api in apis.items()}
    wrong = {**TOKENS, "WPGATE_TEST_CF_TOKEN": "cf-wrong-" + uuid.uuid4().hex}
    result = run("deploy", str(layered["release"]), "--to", "failing", "--dry-run", config=layered["config"],
                 tokens=wrong)
    assert result.returncode == 3, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert f"cloudflare: GET {apis['cloudflare'].api}/user/tokens/verify answered 401" in line
    assert "check the token" in line and "(dry run; production was not changed)" in line
    assert "✘ 6.5 caches: failed" in result.stderr
    assert all(r.method == "GET" for api in apis.values() for r in api.requests[seen[api.name]:])
    assert secrets_in(result.stdout + result.stderr, wrong["WPGATE_TEST_CF_TOKEN"], *TOKENS.values()) == []
    assert_unchanged(before, fingerprint(site))

    # The real deploy checks the same before its backup and its first change: refused, not rolled back.
    result = run("deploy", str(layered["release"]), "--to", "failing", "--yes", "--json", config=layered["config"],
                 tokens=wrong)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "refused" and "tokens/verify answered 401" in result.stderr
    gates = {g["step"]: g for g in report["gates"]}
    assert gates["6.5"]["status"] == "failed" and gates["6.5"]["evidence"]["before_change"] is True
    assert "6.2" not in gates and "6.3" not in gates  # no backup taken, nothing applied
    assert "(run " in result.stderr and "production was not changed)" in result.stderr
    assert all(r.method == "GET" for api in apis.values() for r in api.requests[seen[api.name]:])
    assert secrets_in(result.stdout + result.stderr, wrong["WPGATE_TEST_CF_TOKEN"], *TOKENS.values()) == []
    assert_unchanged(before, fingerprint(site))


def test_deploy_purges_every_layer_in_order_and_visitors_get_the_release(layered, deployed):
    site, config = layered["production"], layered["config"]
    result, report, last = deployed["result"], deployed["report"], deployed["last_requests"]
    gate = {g["step"]: g for g in report["gates"]}["6.5"]
    assert gate["status"] == "passed"
    layers = gate["evidence"]["layers"]
    assert [layer["layer"] for layer in layers] == ["object cache", "wpgate Page Cache", "opcache", "varnish",
                                                    "cloudflare", "fastly", "bunny", "webhook"]
    assert layers[0]["result"] == "no persistent object cache (nothing outlives a request)"
    assert "cached page(s) removed" in layers[1]["result"] and not layers[1]["result"].startswith("0 ")
    assert "opcache_reset() ran in the web server's PHP (fpm-fcgi)" in layers[2]["result"]
    assert layers[3]["result"].startswith("200")
    pages = gate["evidence"]["verify"]["pages"]
    assert "plugin wpgate-hello 1.2.0" in pages["/"]["shows"] and "plugin wpgate-notes 1.1.0" in pages["/"]["shows"]

    # Each CDN got one purge, with its own authentication.
    assert last["cloudflare"].headers["authorization"] == f"Bearer {TOKENS['WPGATE_TEST_CF_TOKEN']}"
    assert last["fastly"].headers["fastly-key"] == TOKENS["WPGATE_TEST_FASTLY_KEY"]
    assert last["bunny"].headers["accesskey"] == TOKENS["WPGATE_TEST_BUNNY_KEY"]
    assert last["webhook"].path == "/purge"

    # Visitors, through Varnish, get the new code's page.
    status, headers, body = http_get(site.url + "/")
    assert status == 200 and fixtures.plugin_marker("wpgate-hello", "1.2.0") in body
    assert fixtures.plugin_marker("wpgate-notes", "1.1.0") in body
    # No one-shot file is left in the web root.
    assert not list(Path(site.path).glob("wpgate-opcache-*.php"))

    run_folder = config.parent / "state" / "runs" / report["run"]
    events = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    purged = [[layer["layer"] for layer in e["layers"]] for e in events if e["event"] == "caches.purged"]
    assert purged == [["object cache", "wpgate Page Cache", "opcache", "varnish", "cloudflare", "fastly", "bunny",
                       "webhook"]]
    names = [e["event"] for e in events]
    assert names.index("apply.done") < names.index("caches.purged") < names.index("clean_up.done")
    no_token_in(result.stdout, result.stderr, (run_folder / "journal.jsonl").read_text(),
                (run_folder / "report.json").read_text())


def test_without_a_purge_every_layer_keeps_the_old_site_and_wpgate_purge_alone_fixes_it(layered, deployed):
    """Files change on disk (as an update does): Varnish, the page cache and OPcache all keep serving
    what was there before; `wpgate purge` alone makes every layer serve what is on disk. Production is
    then put back as the deploy left it."""
    site, config = layered["production"], layered["config"]
    warm(site)
    site.install_plugin("wpgate-notes", "2.0.0")
    try:
        changed_on_disk_and_purged(site, config)
    finally:
        site.install_plugin("wpgate-notes", "1.1.0")
        assert run("purge", "production", config=config).returncode == 0


def changed_on_disk_and_purged(site, config) -> None:
    old, new = fixtures.plugin_marker("wpgate-notes", "1.1.0"), fixtures.plugin_marker("wpgate-notes", "2.0.0")
    status, headers, body = http_get(site.url + "/")
    assert old in body and headers["X-Cache"] == "HIT"                               # Varnish
    status, headers, body = http_get(site.origin_url + "/", host=site.host)
    assert old in body and headers["X-Wpgate-Page-Cache"] == "HIT"                   # the page-cache plugin
    status, headers, body = http_get(site.origin_url + f"/?bypass={uuid.uuid4().hex}", host=site.host)
    assert old in body and new not in body and "X-Wpgate-Page-Cache" not in headers  # OPcache: the old PHP code

    result = run("purge", "production", "--json", config=config)
    assert result.returncode == 0, result.stderr
    evidence = json.loads(result.stdout)
    assert evidence["status"] == "purged"
    assert [layer["layer"] for layer in evidence["layers"]][:4] == ["object cache", "wpgate Page Cache", "opcache",
                                                                    "varnish"]
    assert evidence["verify"]["pages"]["/"]["status"] == 200 and evidence["verify"]["assets_checked"] > 3
    for url, host in ((site.url + "/", None), (site.origin_url + "/", site.host),
                      (site.origin_url + f"/?bypass={uuid.uuid4().hex}", site.host)):
        body = http_get(url, host=host)[2]
        assert new in body and old not in body, url
    no_token_in(result.stdout, result.stderr)


def test_over_ssh_the_server_cache_is_purged_from_the_sites_host(layered):
    site = layered["production"]
    warm(site)

    def cached_object() -> str:
        """The id of the request that put the home page in Varnish (the second id of a hit)."""
        headers = http_get(site.url + "/")[1]
        assert headers["X-Cache"] == "HIT"
        return headers["X-Varnish"].split()[-1]

    before = cached_object()
    result = run("-v", "purge", "over-ssh", "--json", config=layered["config"])
    assert result.returncode == 0, result.stderr
    layers = {layer["layer"]: layer for layer in json.loads(result.stdout)["layers"]}
    assert layers["varnish"]["result"] == "200 Banned"
    assert "opcache_reset() ran" in layers["opcache"]["result"]
    assert "run on ssh" in result.stderr and "curl --silent --show-error" in result.stderr
    assert cached_object() != before  # cached again by the check's fetch, after the purge
    assert not list(Path(site.path).glob("wpgate-opcache-*.php"))


def test_purge_refused_by_a_cdn_exits_3_with_the_providers_message_and_no_token(layered):
    wrong = {**TOKENS, "WPGATE_TEST_CF_TOKEN": "cf-wrong-" + uuid.uuid4().hex}
    result = run("purge", "production", config=layered["config"], tokens=wrong)
    assert result.returncode == 3, result.stderr
    assert "cloudflare: POST" in result.stderr and "answered 401: Authentication error" in result.stderr
    assert "Traceback" not in result.stderr
    no_token_in(result.stdout, result.stderr)
    assert wrong["WPGATE_TEST_CF_TOKEN"] not in result.stderr
    missing = {**TOKENS, "WPGATE_TEST_BUNNY_KEY": ""}
    result = run("purge", "production", config=layered["config"], tokens=missing)
    assert result.returncode == 2 and "WPGATE_TEST_BUNNY_KEY is not set" in result.stderr


def test_a_cdn_that_keeps_failing_fails_the_gate_and_the_run_is_rolled_back_and_purged(layered, apis):
    site, config = layered["failing"], layered["config"]
    warm(site)
    apis["fastly"].misbehave("503", times=4)  # every try of the gate; the rollback's purge then passes
    result = run("deploy", str(layered["release"]), "--to", "failing", "--yes", "--json", config=config)
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    gate = {g["step"]: g for g in report["gates"]}["6.5"]
    assert gate["status"] == "failed" and "fastly: POST" in gate["evidence"]["error"]
    assert "answered 503" in gate["evidence"]["error"]
    assert [layer["layer"] for layer in gate["evidence"]["layers"]][-2:] == ["varnish", "cloudflare"]
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert [layer["layer"] for layer in report["rollback_caches"]["layers"]][-1] == "webhook"
    body = http_get(site.url + "/")[2]
    assert fixtures.plugin_marker("wpgate-hello", "1.0.0") in body and "wpgate-hello 1.2.0" not in body
    run_folder = config.parent / "state" / "runs" / report["run"]
    no_token_in(result.stdout, result.stderr, (run_folder / "journal.jsonl").read_text(),
                (run_folder / "report.json").read_text())


def test_a_varnish_left_unpurged_keeps_the_old_page_the_gate_names_it_and_the_run_is_rolled_back(layered):
    site, config = layered["unpurged"], layered["config"]
    warm(site)
    result = run("deploy", str(layered["release"]), "--to", "unpurged", "--yes", "--json", config=config)
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    gate = {g["step"]: g for g in report["gates"]}["6.5"]
    assert gate["status"] == "failed"
    error = gate["evidence"]["error"]
    assert f"{site.url}/ still shows the old release (plugin wpgate-hello 1.0.0, not 1.2.0" in error
    assert "served by Varnish (X-Cache: HIT" in error
    assert gate["evidence"]["verify"]["pages"]["/"]["served_by"].startswith("Varnish")
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert "still shows the old release" in result.stderr


def test_a_run_killed_as_it_begins_the_caches_gate_is_resumed_with_its_caches_purged(layered, deployed):
    import signal

    site, config = layered["resumed"], layered["config"]
    state = config.parent / "state" / "runs"
    # Production's complete deploy of the same release: where its caches gate began.
    journal = state / deployed["report"]["run"] / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    caches_begin = next(n for n, e in enumerate(events, 1) if e["event"] == "gate.begin" and e["step"] == "6.5")
    warm(site)
    killed = run("deploy", str(layered["release"]), "--to", "resumed", "--yes", config=config,
                 tokens={**TOKENS, "WPGATE_TEST_KILL_AT": str(caches_begin)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_id = max(state.iterdir(), key=lambda path: path.stat().st_mtime).name
    assert fixtures.plugin_marker("wpgate-hello", "1.0.0") in http_get(site.url + "/")[2]  # Varnish: still the old page
    resumed = run("resume", run_id, "--json", config=config)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["status"] == "complete"
    gate = {g["step"]: g for g in report["gates"]}["6.5"]
    assert gate["status"] == "passed" and [layer["layer"] for layer in gate["evidence"]["layers"]][-1] == "varnish"
    watched = {g["step"]: g for g in report["gates"]}["6.6"]  # the site watched too, before completion
    assert watched["status"] == "passed" and watched["evidence"]["resumed"]
    # The deploy's own runner finished the run: the gates after the last change, each recorded and said.
    assert [g["step"] for g in report["gates"] if g["evidence"].get("resumed")] == ["6.5", "6.6", "6.7"]
    assert "6.5 caches: passed" in resumed.stderr and "6.7 completion: passed" in resumed.stderr
    assert fixtures.plugin_marker("wpgate-hello", "1.2.0") in http_get(site.url + "/")[2]


DROPIN = """<?php
/**
 * Plugin Name: wpgate test object cache
 * Version: 0.1
 */
require_once ABSPATH . WPINC . '/class-wp-object-cache.php';
require_once ABSPATH . WPINC . '/cache.php';
%s
"""


def test_a_persistent_object_cache_drop_in_is_named_and_one_that_refuses_the_flush_fails(layered):
    site, config = layered["production"], layered["config"]
    dropin = Path(site.path) / "wp-content" / "object-cache.php"
    try:
        dropin.write_text(DROPIN % "")
        result = run("purge", "production", "--json", config=config)
        assert result.returncode == 0, result.stderr
        first = json.loads(result.stdout)["layers"][0]
        assert first == {**first, "layer": "object cache", "result": "flushed wpgate test object cache 0.1"}
        # A backend that says no from the command line: the purge stops there, saying what to do.
        dropin.write_text(DROPIN % "class WPGATE_No_Flush extends WP_Object_Cache { public function flush() { return false; } }\n"
                                   "add_action( 'muplugins_loaded', function () { "
                                   "$GLOBALS['wp_object_cache'] = new WPGATE_No_Flush(); } );")
        result = run("purge", "production", config=config)
        assert result.returncode == 3, result.stderr
        assert "object cache: wpgate test object cache 0.1 (wp-content/object-cache.php) refused wp_cache_flush()" \
               in result.stderr
    finally:
        dropin.unlink(missing_ok=True)


SLOW_REQUEST = """<?php
touch( __DIR__ . '/%(name)s.began' );
usleep( 1500000 );
touch( __DIR__ . '/%(name)s.ended' );
"""


def opcache_of(config: Path, name: str, **site_changes) -> Opcache:
    site = settings.load(config).site(name)
    site = site.model_copy(update=site_changes)
    transport = transports.for_site(site)
    return Opcache(CacheSite(SiteSession(name, site, transport, Bridge(name, site, transport))))


@pytest.mark.parametrize("name, how", [("unpurged", "fpm-fcgi"), ("staging", "cli-server")])
def test_the_drain_waits_for_the_requests_the_web_server_is_running_and_no_longer(layered, name, how):
    """What the maintenance page's drain rests on: php-fpm's own scoreboard names the requests running when
    maintenance went up; the built-in server with several workers (the bed's run 4) tells nothing, so the
    drain holds a request in each of its processes at once. Either way it ends once the slow request has.
    Where the web server is reached by a reload command only, the drain is the fixed wait."""
    config = layered["config"]
    site = settings.load(config).site(name)
    root = Path(site.path)
    slow = f"wpgate-test-slow-{uuid.uuid4().hex[:8]}"
    (root / f"{slow}.php").write_text(SLOW_REQUEST % {"name": slow})
    visitor = threading.Thread(target=http_get, args=(f"{site.url}/{slow}.php",))
    try:
        visitor.start()
        for _ in range(500):  # the request is under way in one of the web server's processes
            if (root / f"{slow}.began").exists():
                break
            threading.Event().wait(0.02)
        assert (root / f"{slow}.began").exists()
        drained = opcache_of(config, name).drain(fallback=30)
        assert (root / f"{slow}.ended").exists(), drained  # it waited for the slow request, and no longer:
        assert drained["how"] == how and drained["waited"] < 5 and "still_running" not in drained, drained
        assert not list(root.glob("wpgate-drain-*")), "the drain file stays behind"
    finally:
        visitor.join()
        for leftover in root.glob(f"{slow}*"):
            leftover.unlink()
    if name == "staging":
        return
    reloaded = opcache_of(config, "unpurged", opcache=OpcacheConfig(reload_command=["true"])).drain(fallback=0.2)
    assert reloaded == {"how": "fixed", "seconds": 0.2, "web_server": {}}, reloaded
