"""Config parsing and validation: every problem listed at once, with its key path, before any site is touched."""

from pathlib import Path

import pytest

from wpgate import config
from wpgate.errors import ConfigError

DESIGN_EXAMPLE = """
state_dir: .wpgate
sites:
  staging:
    path: /srv/www/staging
    url: https://staging.example.com
  production:
    path: /srv/www/example
    url: https://example.com
    ssh: deploy@web1.example.com:22
    php: php8.2
    backup:
      dir: /var/backups/wpgate
      offsite: /mnt/offsite/wpgate
      max_age: 2h
    caches:
      - varnish: {url: http://127.0.0.1:6081}
      - cloudflare: {zone: ZONE_ID, token_env: CF_API_TOKEN}
    checks:
      pages: [/, /sample-page/]
      content: {"/": ["Hello world"]}
      admin: {user: monitor, password_env: WP_MONITOR_PASSWORD}
      window: 60s
      visual_threshold: 0.01
      visual_mask: [".clock", "#latest-posts"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wpgate.yml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_design_example_loads(tmp_path):
    settings = config.load(write(tmp_path, DESIGN_EXAMPLE))
    production = settings.site("production")
    assert production.backup.max_age == 7200
    assert production.checks.window == 60
    assert [c.type for c in production.caches] == ["varnish", "cloudflare"]
    assert production.caches[1].options.token_env == "CF_API_TOKEN"
    assert settings.state_dir == (tmp_path / ".wpgate").resolve()
    assert settings.site("staging").ssh is None
    assert settings.site("staging").php == "php"


def test_every_problem_is_listed_with_its_key_path(tmp_path):
    found = problems(tmp_path, """
sites:
  prod:
    path: relative/path
    url: ftp://example.com
    colour: blue
    backup: {dir: /b, max_age: 2 weeks}
    caches:
      - varnish: {url: http://x, port: 1}
      - akamai: {}
    checks: {admin: {user: a, password_env: "hunter2 is my password"}, visual_threshold: 3, window: 0s}
""")
    text = "\n".join(found)
    for expected in (
        "sites.prod.path:", "sites.prod.url:", "sites.prod.colour: unknown key",
        "sites.prod.backup.max_age:", "sites.prod.caches[0].port: unknown key",
        "sites.prod.caches[1]: unknown cache type 'akamai'", "sites.prod.checks.admin.password_env:",
        "sites.prod.checks.visual_threshold:", "sites.prod.checks.window:",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert len(found) == 9


@pytest.mark.parametrize("text, expected", [
    ("sites: [", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("state_dir: x\n", "sites: required key is missing"),
    ("sites: {}\n", "no sites are configured"),
    ("sites:\n  'bad name!': {path: /a, url: http://a}\n", "site name"),
    ("sites:\n  a: {path: /a, url: http://a, ssh: '-oProxyCommand=evil'}\n", "not an ssh target"),
    ("sites:\n  a: {path: /a, url: http://a, php: 'php; rm -rf /'}\n", "not a PHP binary"),
    ("sites:\n  a: {path: /a, url: http://a, ssh: 'u@h:99999'}\n", "out of range"),
    ("sites:\n  a: {url: http://a}\n", "sites.a.path: required key is missing"),
    ("top: 1\nsites:\n  a: {path: /a, url: http://a}\n", "top: unknown key"),
])
def test_bad_configs(tmp_path, text, expected):
    assert expected in "\n".join(problems(tmp_path, text))


def test_missing_file_says_how_to_give_one(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.yml")


@pytest.mark.parametrize("value, seconds", [("90s", 90), ("5m", 300), ("2h", 7200), ("1.5h", 5400), (" 10 s ", 10)])
def test_durations(value, seconds):
    assert config.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "5", 5, 30.0, "5d", "-1s", "0s", True, "s", None])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        config.parse_duration(value)


def test_config_path_resolution(monkeypatch):
    monkeypatch.delenv("WPGATE_CONFIG", raising=False)
    assert config.resolve_path(None) == Path("wpgate.yml")
    monkeypatch.setenv("WPGATE_CONFIG", "/etc/wpgate/site.yml")
    assert config.resolve_path(None) == Path("/etc/wpgate/site.yml")
    assert config.resolve_path("mine.yml") == Path("mine.yml")


def test_missing_secrets_are_all_listed_and_never_read_from_the_file(tmp_path, monkeypatch):
    settings = config.load(write(tmp_path, DESIGN_EXAMPLE))
    monkeypatch.delenv("CF_API_TOKEN", raising=False)
    monkeypatch.delenv("WP_MONITOR_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as caught:
        settings.require_secrets("production")
    assert caught.value.problems == [
        "sites.production.caches[1].cloudflare.token_env: environment variable CF_API_TOKEN is not set",
        "sites.production.checks.admin.password_env: environment variable WP_MONITOR_PASSWORD is not set",
    ]
    monkeypatch.setenv("CF_API_TOKEN", "t0ken")
    monkeypatch.setenv("WP_MONITOR_PASSWORD", "pw")
    settings.require_secrets("production")
    assert str(settings.secret("CF_API_TOKEN")) == "***"
    settings.require_secrets("staging")


def test_unknown_site_names_the_configured_ones(tmp_path):
    settings = config.load(write(tmp_path, DESIGN_EXAMPLE))
    with pytest.raises(ConfigError, match="no site named 'prod' .configured: production, staging"):
        settings.site("prod")


RESTIC_EXAMPLE = """
sites:
  production:
    path: /srv/www/example
    url: https://example.com
    backup:
      engine: restic
      repository: /var/backups/restic/example
      offsite: s3:http://s3.example.com/bucket/example
      password_env: RESTIC_PASSWORD
      offsite_env: {AWS_ACCESS_KEY_ID: OFFSITE_KEY_ID, AWS_SECRET_ACCESS_KEY: OFFSITE_SECRET}
      max_age: 2h
"""


def test_design_restic_example_loads_and_names_its_secrets(tmp_path, monkeypatch):
    settings = config.load(write(tmp_path, RESTIC_EXAMPLE))
    backup = settings.site("production").backup
    assert (backup.engine, backup.repository, backup.dir) == ("restic", "/var/backups/restic/example", None)
    assert backup.offsite == "s3:http://s3.example.com/bucket/example"  # a restic repository, not a local path
    assert settings.site("production").secret_envs() == {
        "backup.password_env": "RESTIC_PASSWORD", "backup.offsite_env.AWS_ACCESS_KEY_ID": "OFFSITE_KEY_ID",
        "backup.offsite_env.AWS_SECRET_ACCESS_KEY": "OFFSITE_SECRET"}
    for name in ("RESTIC_PASSWORD", "OFFSITE_KEY_ID", "OFFSITE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as error:
        settings.require_secrets("production")
    assert "sites.production.backup.password_env: environment variable RESTIC_PASSWORD is not set" in str(error.value)
    assert "backup.offsite_env.AWS_SECRET_ACCESS_KEY: environment variable OFFSITE_SECRET" in str(error.value)


@pytest.mark.parametrize("backup, expected", [
    ("{engine: restic, offsite: /mnt/x, password_env: P}", "repository: required with engine: restic"),
    ("{engine: restic, repository: /r, offsite: /mnt/x}", "password_env: required with engine: restic"),
    ("{engine: restic, repository: relative, password_env: P}", "must be an absolute path"),
    ("{engine: restic, repository: /r, password_env: P, check_subset: lots}", "is not a share of the data"),
    ("{dir: /b, offsite: /o, password_env: P}", "password_env: only for engine: restic"),
    ("{offsite: /o}", "dir: required key is missing"),
    ("{dir: /b, offsite: relative}", "must be an absolute path on this machine"),
    ("{engine: borg, dir: /b}", "engine"),
])
def test_bad_backup_engines(tmp_path, backup, expected):
    text = f"sites:\n  production:\n    path: /srv/www/example\n    url: https://example.com\n    backup: {backup}\n"
    with pytest.raises(ConfigError) as error:
        config.load(write(tmp_path, text))
    assert expected in str(error.value)
