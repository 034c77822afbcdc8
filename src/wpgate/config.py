"""Reads and validates `wpgate.yml`: every problem is listed at once, with its key path, before any site is touched."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, create_model, field_validator, model_validator

from wpgate import redact, yamlfile
from wpgate.command import Secret
from wpgate.config_types import (Duration, EnvName, HttpUrl, Strict, absolute_path, is_http_url,  # noqa: F401
                                 parse_duration)
from wpgate.errors import BadInput, ConfigError
from wpgate.notify.registry import NOTIFIERS

DEFAULT_CONFIG = "wpgate.yml"
CONFIG_ENV = "WPGATE_CONFIG"

# Patterns are matched whole (`fullmatch`): `$` alone would let a trailing newline through.
_SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SSH_TARGET = re.compile(r"(?:(?P<user>[^@\s:/\[\]]+)@)?(?P<host>[^@\s:/\[\]-][^@\s:/\[\]]*|\[[0-9a-fA-F:]+\])"
                         r"(?::(?P<port>\d{1,5}))?")


def parse_ssh_target(target: str) -> tuple[str | None, str, int | None]:
    """`user@host:port`, `user@host`, `host` or `[v6::addr]:port` into (user, host, port)."""
    match = _SSH_TARGET.fullmatch(target)
    if not match:
        raise ValueError(f"{target!r} is not an ssh target: use user@host:port, user@host or a Host alias")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port in {target!r} is out of range")
    return match.group("user"), match.group("host").strip("[]"), port


class BackupConfig(Strict):
    # `engine: archive` (the default): wpgate's own archive in `dir`, copied to `offsite`, a folder on
    # this machine. `engine: restic`: restic repositories; `repository` on the site's host, `offsite` any
    # restic repository (a path, sftp:, s3:, rest:...) reached from the site's host.
    engine: Literal["archive", "restic"] = "archive"
    dir: str | None = None
    offsite: str | None = None
    repository: str | None = None
    password_env: EnvName | None = None
    # Environment variables restic needs for the off-site repository (AWS_ACCESS_KEY_ID, say), each named
    # here by the variable of this machine that holds its value.
    offsite_env: dict[str, EnvName] = Field(default_factory=dict)
    # How much of the off-site repository's data `restic check --read-data-subset` reads after each copy.
    check_subset: str = "10%"
    # restic's extended options (`-o key=value`) for the off-site repository: `sftp.command` names the ssh
    # command line restic opens an `sftp:` repository with (an ssh config file of its own, say).
    restic_options: dict[str, str] = Field(default_factory=dict)
    # engine: archive with an `sftp://` off-site copy: an ssh config file for sftp (`-F`); absent: the user's.
    offsite_ssh_config: str | None = None
    max_age: Duration = "2h"  # type: ignore[assignment]
    # A database the site's user may fill and empty for `restore --verify`, on hosts where it may not
    # create `<DB_NAME>_wpgate_verify` itself. Never one that holds data: wpgate drops its tables.
    verify_database: str | None = None
    # Retention (`wpgate prune`, and after each complete deploy); neither set: every backup is kept.
    keep_last: int | None = None
    keep_daily: int | None = None

    @field_validator("keep_last", "keep_daily", mode="before")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> Any:
        least = 1 if info.field_name == "keep_last" else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"{value!r} is not a whole number of {least} or more")
        return value

    @field_validator("dir", "repository")
    @classmethod
    def _host_path(cls, path: str | None) -> str | None:
        return None if path is None else absolute_path(path, path, "on the site's host")

    @field_validator("offsite_env")
    @classmethod
    def _offsite_env(cls, names: dict[str, str]) -> dict[str, str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
                raise ValueError(f"{name!r} is not an environment variable name")
        return names

    @field_validator("check_subset")
    @classmethod
    def _subset(cls, subset: str) -> str:
        if not re.fullmatch(r"(100|[1-9][0-9]?(\.[0-9]+)?)%|[1-9][0-9]*/[1-9][0-9]*", str(subset)):
            raise ValueError(f"{subset!r} is not a share of the data restic reads: a percentage (10%) or n/t (1/5)")
        return subset

    @model_validator(mode="after")
    def _engine_keys(self) -> "BackupConfig":
        if self.engine == "archive":
            if self.dir is None:
                raise ValueError("dir: required key is missing (the folder on the site's host backups are written to)")
            strays = [key for key in ("repository", "password_env") if getattr(self, key) is not None]
            strays += [key for key in ("restic_options",) if getattr(self, key)]
            if strays:
                raise ValueError(f"{', '.join(strays)}: only for engine: restic (this site's backups use engine: "
                                 "archive)")
            from wpgate.backup.remote import valid

            if self.offsite is not None and self.offsite.startswith(("sftp://", "s3://")):
                problem = valid(self.offsite)
                if problem:
                    raise ValueError(f"offsite: {problem}")
                if self.offsite_env and not self.offsite.startswith("s3://"):
                    raise ValueError("offsite_env: only for an s3:// off-site copy (or engine: restic)")
            elif self.offsite_env:
                raise ValueError("offsite_env: only for an s3:// off-site copy (or engine: restic)")
            elif self.offsite is not None:
                object.__setattr__(self, "offsite", absolute_path(os.path.expanduser(self.offsite), self.offsite,
                                                                  "on this machine (the off-site copy)"))
        else:
            missing = [key for key in ("repository", "password_env") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required with engine: restic (the repository on the "
                                 "site's host, and the variable holding its password)")
            if self.offsite is not None and (not self.offsite.strip() or any(c in self.offsite for c in "\n\r\0")):
                raise ValueError(f"offsite: {self.offsite!r} is not a restic repository")
        return self

    @field_validator("verify_database")
    @classmethod
    def _database_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9_$]{1,64}", name):
            raise ValueError(f"{name!r} is not a database name (letters, digits, _ and $, up to 64)")
        return name


class OpcacheConfig(Strict):
    """How the web server's OPcache is reset after an update (the CLI's is another process).

    Without `reload_command`, a one-shot PHP file is requested from the site (at `url`, default the
    site's URL); with it, that command runs on the site's host instead (an argument list; a string
    is split as a shell would split it, but never run by a shell).
    """

    reload_command: list[str] | None = None
    url: HttpUrl | None = None

    @field_validator("reload_command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = shlex.split(value)
        if isinstance(value, list) and not value:
            raise ValueError("an empty command")
        return value


class CacheEntry(Strict):
    type: str
    options: Strict

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        # The cache layers' registry, imported when a config is read: the layers' modules import this one.
        from wpgate.caches.registry import LAYERS

        if isinstance(value, dict) and set(value) == {"type", "options"}:
            return value
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError("each cache is a mapping with one key, its type: "
                             + ", ".join(sorted(LAYERS)))
        (kind, options), = value.items()
        if kind not in LAYERS:
            raise ValueError(f"unknown cache type {kind!r}; known: {', '.join(sorted(LAYERS))}")
        return {"type": kind, "options": LAYERS[kind].Options.model_validate(options or {})}


class AdminCheck(Strict):
    user: str
    password_env: EnvName


class ChecksConfig(Strict):
    pages: list[str] = Field(default_factory=lambda: ["/"])
    content: dict[str, list[str]] = Field(default_factory=dict)
    admin: AdminCheck | None = None
    window: Duration = "30s"  # type: ignore[assignment]
    # Absent: the layout is not checked and no browser is started (screenshots cost seconds a page).
    visual_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    visual_mask: list[str] = Field(default_factory=list)
    # The PHP error log to read, on the site's host, when the site's own settings (WP_DEBUG_LOG, PHP's
    # error_log as the CLI sees it) do not name the file the web server writes to.
    error_log: str | None = None
    # `wpgate qa`: a new PHP warning or deprecation in staging's error log fails its check (`fail`), or is
    # only reported (`warn`). A new fatal error always fails; gate 6.6 looks at fatal errors only.
    php_warnings: Literal["fail", "warn"] = "fail"

    @field_validator("pages")
    @classmethod
    def _paths(cls, pages: list[str]) -> list[str]:
        for page in pages:
            if not page.startswith("/"):
                raise ValueError(f"page {page!r} must be a path starting with /")
        return pages

    @field_validator("content")
    @classmethod
    def _content_pages(cls, content: dict[str, list[str]]) -> dict[str, list[str]]:
        for page in content:
            if not str(page).startswith("/"):
                raise ValueError(f"page {page!r} must be a path starting with /")
        return content

    @field_validator("error_log")
    @classmethod
    def _log_path(cls, path: str | None) -> str | None:
        return None if path is None else absolute_path(path, path, "on the site's host")

    @property
    def all_pages(self) -> list[str]:
        """The key pages and every page with expected content, each once, in the order given."""
        return list(dict.fromkeys([*self.pages, *self.content]))


NOTIFY_OUTCOMES = ("complete", "refused", "rolled_back", "rollback_failed")


def _notify_config() -> type[Strict]:
    """`notify:`: one optional key per notifier of the registry (its options' model lives with it), and `on`."""
    channels: dict[str, Any] = {name: (notifier.Options | None, None) for name, notifier in NOTIFIERS.items()}
    return create_model("NotifyConfig", __base__=Strict, **channels,
                        on=(list[Literal["complete", "refused", "rolled_back", "rollback_failed"]],
                            Field(default_factory=lambda: list(NOTIFY_OUTCOMES))))


NotifyConfig = _notify_config()




class SiteConfig(Strict):
    path: str
    url: str
    ssh: str | None = None
    ssh_config: str | None = None
    php: str = "php"
    backup: BackupConfig | None = None
    caches: list[CacheEntry] = Field(default_factory=list)
    opcache: OpcacheConfig = Field(default_factory=OpcacheConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    notify: NotifyConfig | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        return absolute_path(path, path, "(the WordPress root on its host)")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not is_http_url(url):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url.rstrip("/")

    @field_validator("ssh")
    @classmethod
    def _ssh(cls, target: str | None) -> str | None:
        if target is not None:
            parse_ssh_target(target)
        return target

    @field_validator("php")
    @classmethod
    def _php(cls, php: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_./+-]+", php) or php.startswith("-"):
            raise ValueError(f"{php!r} is not a PHP binary name or path")
        return php

    @model_validator(mode="after")
    def _cache_folders_apart(self) -> "SiteConfig":
        """An nginx cache folder is emptied on the host: never one holding the site or its backups."""
        keep = [self.path] + [folder for folder in (self.backup.dir, self.backup.repository)
                              if folder] if self.backup else [self.path]
        for index, cache in enumerate(self.caches):
            folder = getattr(cache.options, "cache_path", None)
            if folder and any(_overlaps(folder, other) for other in keep):
                raise ValueError(f"caches[{index}].nginx.cache_path {folder} holds or lies inside the site's root "
                                 "or its backup folder, and would be emptied: name nginx's own cache folder")
        return self

    def secret_envs(self) -> dict[str, str]:
        """Key path -> environment variable name, for each secret this site needs."""
        names: dict[str, str] = {}
        for index, cache in enumerate(self.caches):
            for key, value in cache.options.model_dump().items():
                if key.endswith("_env") and value:
                    names[f"caches[{index}].{cache.type}.{key}"] = value
        if self.checks.admin:
            names["checks.admin.password_env"] = self.checks.admin.password_env
        if self.backup and self.backup.password_env:
            names["backup.password_env"] = self.backup.password_env
        for variable, env in (self.backup.offsite_env.items() if self.backup else ()):
            names[f"backup.offsite_env.{variable}"] = env
        for name in NOTIFIERS:
            options = getattr(self.notify, name, None)
            for key, value in (options.model_dump() if options else {}).items():
                if key.endswith("_env") and value:
                    names[f"notify.{name}.{key}"] = value
        return names


def _overlaps(first: str, second: str) -> bool:
    a, b = posixpath.normpath(first), posixpath.normpath(second)
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


class FleetConfig(Strict):
    """`fleet:`: how `wpgate rollout` runs a group's site deployments."""

    engine: Literal["local", "celery"] = "local"
    parallel: int = 4
    # celery: the environment variable holding the broker's URL (redis://host:6379/0); it may hold a password.
    broker_env: EnvName | None = None

    @field_validator("parallel", mode="before")
    @classmethod
    def _parallel(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{value!r} is not a whole number of 1 or more (sites deployed at once)")
        return value

    @model_validator(mode="after")
    def _broker(self) -> "FleetConfig":
        if self.engine == "celery" and not self.broker_env:
            raise ValueError("engine celery needs broker_env: the environment variable holding the broker's URL "
                             "(redis://host:6379/0)")
        return self


class Config(Strict):
    state_dir: str = ".wpgate"
    # An OpenSSH allowed-signers file (relative to this file): when set, deploy refuses an approval
    # not signed by a principal and key it lists (see signing.py).
    approvers: str | None = None
    sites: dict[str, SiteConfig]
    # Named sets of sites, for rollouts: a name is a site or a group, not both.
    groups: dict[str, list[str]] = Field(default_factory=dict)
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    @field_validator("sites")
    @classmethod
    def _names(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        if not sites:
            raise ValueError("no sites are configured")
        for name in sites:
            if not _SITE_NAME.fullmatch(str(name)):
                raise ValueError(f"site name {name!r} may hold only letters, digits, '.', '_' and '-'")
        return sites

    @model_validator(mode="after")
    def _groups(self) -> "Config":
        problems = []
        for name, members in self.groups.items():
            if not _SITE_NAME.fullmatch(str(name)):
                problems.append(f"groups.{name}: a group name may hold only letters, digits, '.', '_' and '-'")
            if name in self.sites:
                problems.append(f"groups.{name}: {name!r} names a site too: a name is a site or a group, not both")
            seen = set()
            for index, member in enumerate(members):
                if member not in self.sites:
                    problems.append(f"groups.{name}[{index}]: no site named {member!r}")
                elif member in seen:
                    problems.append(f"groups.{name}[{index}]: site {member!r} is listed twice")
                seen.add(member)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Settings:
    """A validated config, tied to the file it came from."""

    def __init__(self, model: Config, path: Path) -> None:
        self.model = model
        self.path = path

    @property
    def state_dir(self) -> Path:
        return (self.path.parent / self.model.state_dir).resolve()

    @property
    def approvers(self) -> Path | None:
        """The allowed-signers file approvals must be signed by, when the config names one."""
        return (self.path.parent / self.model.approvers).resolve() if self.model.approvers else None

    def site(self, name: str) -> SiteConfig:
        try:
            return self.model.sites[name]
        except KeyError:
            known = ", ".join(sorted(self.model.sites))
            raise ConfigError(str(self.path), [f"sites: no site named {name!r} (configured: {known})"]) from None

    def group(self, name: str) -> list[str]:
        """The sites of group `name`, in the group's order; an unknown or empty group is bad input."""
        groups = self.model.groups
        if name not in groups:
            known = ", ".join(sorted(groups)) or "none"
            hint = f" ({name!r} is a site: deploy it with `wpgate deploy`)" if name in self.model.sites else ""
            raise ConfigError(str(self.path), [f"groups: no group named {name!r}{hint} (configured: {known})"])
        if not groups[name]:
            raise ConfigError(str(self.path), [f"groups.{name}: the group is empty: list its sites"])
        return list(groups[name])

    def require_secrets(self, *site_names: str, skip: tuple[str, ...] = ()) -> None:
        """Every `*_env` secret the named sites need must be set: all missing ones at once. `skip`: key
        prefixes not needed here (a rollback does not wait on a notifier's password)."""
        missing = []
        for name in site_names:
            for key, env in self.site(name).secret_envs().items():
                if not key.startswith(skip) and not os.environ.get(env):
                    missing.append(f"sites.{name}.{key}: environment variable {env} is not set")
        if missing:
            raise ConfigError(str(self.path), missing)

    def secret(self, env: str) -> Secret:
        return Secret(os.environ.get(env, ""))


def resolve_path(option: str | None) -> Path:
    """The config file: `-c`, else $WPGATE_CONFIG, else ./wpgate.yml."""
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load(path: Path) -> Settings:
    if not path.exists():
        raise ConfigError(str(path), ["no such file (give one with -c, or set WPGATE_CONFIG)"])
    try:
        data = yamlfile.read(path, "config", config=True)
    except BadInput as error:
        raise ConfigError(str(path), [error.message.removeprefix(f"{path}: ").removeprefix("the config is ")]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the file must be a mapping with `sites:` (and optionally `state_dir:`)"])
    register_secrets(data)  # before validating: a message about a bad value must not show a secret either
    try:
        model = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(str(path), format_errors(error)) from None
    settings = Settings(model, path.resolve())
    problems = _folder_problems(settings)
    if problems:
        raise ConfigError(str(path), problems)
    return settings


def register_secrets(data: Any) -> None:
    """Every value a `*_env` key names (from the environment) and every credential written in a URL
    (`https://user:password@host`) is masked wherever wpgate prints or writes text."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_env"):
                names = value.values() if isinstance(value, dict) else [value]
                redact.register(*(os.environ.get(name) for name in names if isinstance(name, str)))
                for name in names:
                    if isinstance(name, str) and os.environ.get(name, "").startswith(("http://", "https://")):
                        redact.register_url(os.environ[name])
            register_secrets(value)
    elif isinstance(data, list):
        for item in data:
            register_secrets(item)
    elif isinstance(data, str) and "@" in data and "://" in data:
        redact.register_url(data)


def _folder_problems(settings: Settings) -> list[str]:
    """state_dir must be a folder (or not exist yet, under folders); approvers a readable file."""
    problems = []
    state_dir = settings.state_dir
    for folder in (state_dir, *state_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == state_dir else f"lies under {folder}, which is a file"
                problems.append(f"state_dir: {state_dir} {what}, not a folder: name a folder "
                                "(wpgate keeps its runs, artifacts and backups index there)")
            break
    approvers = settings.approvers
    if approvers is not None and not approvers.is_file():
        problems.append(f"approvers: {approvers} is not a file (an OpenSSH allowed-signers file: one "
                        "`NAME KEYTYPE KEY` line per approver)")
    return problems


def format_errors(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        location = _key_path(item["loc"])
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return problems


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if part in ("type", "options") and path.split(".")[-2:-1] == ["caches"]:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
