"""Fleet config (`groups`, `fleet`) and group releases (`sites`, `skipped`, one site's view of them)."""

from pathlib import Path

import pytest

from wpgate import config, release as release_module
from wpgate.errors import BadInput, ConfigError
from wpgate.planning import is_newer

SHA = "a" * 64
SITES = """
sites:
  staging: {path: /srv/staging, url: http://staging.test}
  shop-a: {path: /srv/a, url: http://a.test}
  shop-b: {path: /srv/b, url: http://b.test}
  blog-c: {path: /srv/c, url: http://c.test}
"""


def load(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "wpgate.yml"
    path.write_text(text)
    return config.load(path)


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    return str(raised.value)


def test_groups_and_fleet_as_design_shows(tmp_path):
    settings = load(tmp_path, SITES + "groups:\n  clients: [shop-a, shop-b, blog-c]\n  none: []\n"
                    "fleet: {engine: local, parallel: 2, broker_env: WPGATE_BROKER_URL}\n")
    assert settings.group("clients") == ["shop-a", "shop-b", "blog-c"]
    assert settings.model.fleet.parallel == 2
    assert load(tmp_path, SITES).model.fleet.engine == "local"
    with pytest.raises(ConfigError, match="no group named 'shop-a'.*is a site"):
        settings.group("shop-a")
    with pytest.raises(ConfigError, match="groups.none: the group is empty"):
        settings.group("none")


@pytest.mark.parametrize("text, message", [
    ("groups:\n  shop-a: [shop-b]\n", "names a site too"),
    ("groups:\n  clients: [shop-a, nowhere]\n", r"groups.clients\[1\]: no site named 'nowhere'"),
    ("groups:\n  clients: [shop-a, shop-a]\n", "listed twice"),
    ("fleet: {engine: ray}\n", "fleet.engine"),
    ("fleet: {parallel: 0}\n", "fleet.parallel: 0 is not a whole number of 1 or more"),
    ("fleet: {workers: 2}\n", "fleet.workers: unknown key"),
    ("fleet: {engine: celery}\n", "engine celery needs broker_env"),
])
def test_bad_fleet_config_is_one_clear_problem(tmp_path, text, message):
    import re
    assert re.search(message, problems(tmp_path, SITES + text))


GROUP_MANIFEST = f"""wpgate: 1
id: 2026-11-30-1
staging: {{site: staging, url: http://staging.test}}
updates:
  - {{type: plugin, slug: akismet, to: '5.1', artifact: {{path: artifacts/akismet.zip, sha256: '{SHA}'}}}}
  - {{type: plugin, slug: hello-dolly, to: '1.7.2', artifact: {{path: artifacts/hello.zip, sha256: '{SHA}'}}}}
sites:
  shop-a: {{akismet: '5.0.2', hello-dolly: '1.6'}}
  shop-b: {{hello-dolly: '1.7'}}
skipped: {{blog-c: "akismet 5.2 is newer than the release's 5.1"}}
"""


def test_a_group_release_gives_each_site_exactly_its_updates(tmp_path):
    path = tmp_path / "release.yml"
    path.write_text(GROUP_MANIFEST)
    group = release_module.load(path)
    assert group.is_group and group.updates[0].from_version is None
    shop_b = group.for_site("shop-b")
    assert [(u.slug, u.from_version, u.to_version) for u in shop_b.updates] == [("hello-dolly", "1.7", "1.7.2")]
    shop_a = group.for_site("shop-a")
    assert [(u.slug, u.from_version) for u in shop_a.updates] == [("akismet", "5.0.2"), ("hello-dolly", "1.6")]
    # A site's view keeps the group's digest and saved form: what was approved.
    assert shop_a.digest() == group.digest() and shop_a.as_dict() == group.as_dict()
    assert "from" not in group.as_dict()["updates"][0]
    release_module.save(shop_a, tmp_path / "copy.yml")
    assert release_module.load(tmp_path / "copy.yml").digest() == group.digest()
    with pytest.raises(BadInput, match="skips site blog-c: akismet 5.2 is newer"):
        group.for_site("blog-c")
    with pytest.raises(BadInput, match="without site nowhere"):
        group.for_site("nowhere")


def test_the_digest_covers_sites(tmp_path):
    path = tmp_path / "release.yml"
    path.write_text(GROUP_MANIFEST)
    before = release_module.load(path).digest()
    path.write_text(GROUP_MANIFEST.replace("shop-b: {hello-dolly: '1.7'}", "shop-b: {hello-dolly: '1.6'}"))
    assert release_module.load(path).digest() != before


@pytest.mark.parametrize("change, message", [
    (("to: '5.1'", "from: '5.0', to: '5.1'"), "names no `from`"),
    (("shop-b: {hello-dolly: '1.7'}", "shop-b: {jetpack: '1.7'}"), "sites.shop-b.jetpack: no update"),
    (("shop-b: {hello-dolly: '1.7'}", "shop-b: {}"), "sites.shop-b: must be a non-empty"),
])
def test_bad_group_manifests(tmp_path, change, message):
    path = tmp_path / "release.yml"
    path.write_text(GROUP_MANIFEST.replace(*change))
    with pytest.raises(BadInput, match=message):
        release_module.load(path)


def test_versions_compare_as_wordpress_does():
    assert is_newer("5.2", "5.1") and is_newer("5.10", "5.9") and is_newer("6.2.6", "6.2")
    assert not is_newer("5.1", "5.1") and not is_newer("6.2-RC1", "6.2") and not is_newer("1.6", "1.7.2")


def test_the_library_checks_a_rollout_and_plans_its_waves_without_touching_a_site(tmp_path):
    import wpgate

    config = tmp_path / "wpgate.yml"
    config.write_text(SITES + "groups:\n  clients: [shop-a, shop-b, blog-c]\n  shops: [shop-a, shop-b]\n")
    release = tmp_path / "release.yml"
    release.write_text(GROUP_MANIFEST)
    project = wpgate.Project.load(config)
    result = project.rollout(release, to="clients", waves="1,100%", dry_run=True)
    assert result.status == "dry_run" and result.exit_code == 0
    assert result.report["waves"] == [["shop-a"], ["shop-b"]]  # blog-c is skipped by the plan
    with pytest.raises(ConfigError, match="no group named 'nowhere'"):
        project.rollout(release, to="nowhere")
    with pytest.raises(BadInput, match="names sites outside group shops: blog-c"):
        project.rollout(release, to="shops", dry_run=True)
    with pytest.raises(BadInput, match="--parallel 0"):
        project.rollout(release, to="clients", parallel=0, dry_run=True)
    assert not (tmp_path / ".wpgate" / "rollouts").exists()
