"""The release manifest: which components go from which version to which, from which artifact, and its approval."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from wpgate import yamlfile
from wpgate.yamlfile import QaLoader  # noqa: F401 - qa.py reads QA records with it
from wpgate.errors import BadInput, listing

MANIFEST_FORMAT = 1
TYPES = ("core", "plugin", "theme")
# Every pattern is matched whole (`fullmatch`): `$` alone would let a trailing newline through.
SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
# A WordPress version string: digits first, then letters, digits, dots, dashes, pluses.
VERSION = re.compile(r"[0-9][0-9A-Za-z.+-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ARTIFACT_PATH = re.compile(r"[A-Za-z0-9._/-]+\.zip")


def load_yaml(path: Path, what: str, loader: type | None = None) -> Any:
    """A manifest (every scalar text) or, with `loader=QaLoader`, a QA record, under yamlfile's limits."""
    return yamlfile.read(path, what, loader=loader)


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the state folder
    sha256: str


@dataclass(frozen=True)
class Update:
    type: str
    slug: str
    from_version: str | None  # None in a group release: each site's `from` is its entry under `sites`
    to_version: str
    artifact: Artifact
    parent: str | None = None  # a child theme's parent theme

    @property
    def label(self) -> str:
        if self.from_version is None:
            return f"{self.type} {self.slug} → {self.to_version}"
        return f"{self.type} {self.slug} {self.from_version} → {self.to_version}"

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": self.type, "slug": self.slug}
        if self.from_version is not None:
            entry["from"] = self.from_version
        entry["to"] = self.to_version
        if self.parent:
            entry["parent"] = self.parent
        entry["artifact"] = {"path": self.artifact.path, "sha256": self.artifact.sha256}
        return entry


@dataclass(frozen=True)
class Approval:
    by: str
    at: str
    digest: str
    signature: str | None = None  # `approve --key`: an OpenSSH signature over `digest` (see signing.py)


@dataclass(frozen=True)
class Release:
    id: str
    staging_site: str
    staging_url: str
    updates: tuple[Update, ...]
    approval: Approval | None = None
    qa: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)
    # A group release (`plan --to GROUP`): each site that gets updates -> {slug: its version now}, and the
    # sites left out, each with why. None in a one-site release.
    sites: dict[str, dict[str, str]] | None = None
    skipped: dict[str, str] | None = None
    # The one site of a group release this view deploys to (`for_site`); its digest stays the group's.
    group_release: "Release | None" = field(default=None, compare=False)

    def body(self) -> dict[str, Any]:
        """Everything above `approval`, in the manifest's own order."""
        if self.group_release is not None:
            return self.group_release.body()
        body: dict[str, Any] = {"wpgate": MANIFEST_FORMAT, "id": self.id,
                                "staging": {"site": self.staging_site, "url": self.staging_url},
                                "updates": [update.as_dict() for update in self.updates]}
        if self.sites is not None:
            body["sites"] = {name: dict(versions) for name, versions in self.sites.items()}
            body["skipped"] = dict(self.skipped or {})
        return body

    @property
    def is_group(self) -> bool:
        return self.sites is not None and self.group_release is None

    def for_site(self, site: str) -> "Release":
        """What `deploy --to SITE` applies: a one-site release is itself; of a group release, exactly the updates
        SITE's entry names, in manifest order, each `from` the version that entry holds. Its digest, approval and
        saved form stay the group's (what was approved)."""
        if self.sites is None or self.group_release is not None:
            return self
        if site not in self.sites:
            if site in (self.skipped or {}):
                raise BadInput(f"release {self.id} skips site {site}: {self.skipped[site]}")  # type: ignore[index]
            raise BadInput(f"release {self.id} is a group release without site {site} "
                           f"(its sites: {', '.join(self.sites) or 'none'})")
        versions = self.sites[site]
        updates = tuple(replace(update, from_version=versions[update.slug])
                        for update in self.updates if update.slug in versions)
        return replace(self, updates=updates, group_release=self)

    def as_dict(self) -> dict[str, Any]:
        if self.group_release is not None:
            return self.group_release.as_dict()
        document = self.body()
        if self.approval:
            document["approval"] = {"by": self.approval.by, "at": self.approval.at,
                                    "digest": self.approval.digest}
            if self.approval.signature:
                document["approval"]["signature"] = self.approval.signature
        if self.qa is not None:
            document["qa"] = self.qa
        return document

    def digest(self, qa: dict[str, Any] | None = None) -> str:
        """sha256 over the canonical JSON of the body and the QA record: what approval freezes."""
        if self.group_release is not None:
            return self.group_release.digest(qa)
        canonical = json.dumps({"release": self.body(), "qa": self.qa if qa is None else qa},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def approved(self, by: str, at: str, qa: dict[str, Any],
                 sign: Callable[[str], str] | None = None) -> "Release":
        """The release approved by `by`; `sign` turns the digest into a signature (approve --key)."""
        with_qa = replace(self, qa=qa)
        digest = with_qa.digest()
        return replace(with_qa, approval=Approval(by=by, at=at, digest=digest,
                                                  signature=sign(digest) if sign else None))


def save(release: Release, path: Path) -> None:
    text = yamlfile.dump(release.as_dict())
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        raise BadInput(f"{path}: cannot write the release manifest: {error.strerror}") from None


def load(path: Path) -> Release:
    """Read and check a manifest; every problem is listed at once (exit 2)."""
    data = load_yaml(path, "release manifest")
    if isinstance(data, dict) and data.get("qa") is not None:
        # Versions are text, but the QA record copied in keeps its numbers, as `approve` read them.
        data["qa"] = (load_yaml(path, "release manifest", QaLoader) or {}).get("qa")
    problems: list[str] = []
    release = _parse(data, problems)
    if release is not None:
        problems += order_problems(release.updates)
    if problems:
        raise BadInput(_listing(path, problems))
    assert release is not None
    return replace(release, path=path)


def _listing(path: Path, problems: list[str]) -> str:
    return f"{path}: {listing(problems)}"


def _keys(value: Any, where: str, required: set[str], optional: set[str], problems: list[str]) -> bool:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a mapping")
        return False
    for key in value:
        if key not in required | optional:
            problems.append(f"{where}.{key}: unknown key" if where else f"{key}: unknown key")
    for key in sorted(required - set(value)):
        problems.append(f"{where}.{key}: required key is missing" if where else f"{key}: required key is missing")
    return required <= set(value)


def _text(value: Any, where: str, pattern: re.Pattern[str], what: str, problems: list[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        problems.append(f"{where}: {value!r} is not {what}")
        return ""
    return value


def _parse(data: Any, problems: list[str]) -> Release | None:
    if not _keys(data, "", {"wpgate", "id", "staging", "updates"}, {"approval", "qa", "sites", "skipped"}, problems):
        return None
    group = "sites" in data
    if str(data["wpgate"]) != str(MANIFEST_FORMAT):
        problems.append(f"wpgate: format {data['wpgate']!r} is not supported (this wpgate reads format 1)")
    release_id = _text(data["id"], "id", RELEASE_ID, "a release id", problems)
    staging = data["staging"]
    staging_site = staging_url = ""
    if _keys(staging, "staging", {"site", "url"}, set(), problems):
        staging_site, staging_url = str(staging["site"]), str(staging["url"])
    updates: list[Update] = []
    if not isinstance(data["updates"], list) or not data["updates"]:
        problems.append("updates: must be a non-empty list")
    else:
        for index, entry in enumerate(data["updates"]):
            update = _parse_update(entry, f"updates[{index}]", problems, group)
            if update:
                updates.append(update)
    approval = None
    if data.get("approval") is not None:
        raw = data["approval"]
        if _keys(raw, "approval", {"by", "at", "digest"}, {"signature"}, problems):
            signature = raw.get("signature")
            if signature is not None and not isinstance(signature, str):
                problems.append("approval.signature: must be the text of an OpenSSH signature")
                signature = None
            approval = Approval(by=str(raw["by"]), at=str(raw["at"]), digest=str(raw["digest"]),
                                signature=signature or None)
    qa = data.get("qa")
    if qa is not None and not isinstance(qa, dict):
        problems.append("qa: must be a mapping")
        qa = None
    sites, skipped = _parse_sites(data, updates, problems) if group else (None, None)
    if not group and "skipped" in data:
        problems.append("skipped: only a group release (with `sites`) skips sites")
    return Release(id=release_id, staging_site=staging_site, staging_url=staging_url,
                   updates=tuple(updates), approval=approval, qa=qa, sites=sites, skipped=skipped)


def _parse_sites(data: dict[str, Any], updates: list[Update],
                 problems: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """A group release's `sites` (site -> {slug: version now}, each slug one of `updates`) and `skipped`."""
    slugs = {update.slug for update in updates}
    sites: dict[str, dict[str, str]] = {}
    raw = data["sites"]
    if not isinstance(raw, dict):
        problems.append("sites: must be a mapping of site names to {slug: version}")
        raw = {}
    for name, versions in raw.items():
        if not isinstance(versions, dict) or not versions:
            problems.append(f"sites.{name}: must be a non-empty mapping of slugs to versions")
            continue
        entry = {}
        for slug, version in versions.items():
            if slug not in slugs:
                problems.append(f"sites.{name}.{slug}: no update of the release has this slug")
            entry[str(slug)] = _text(version, f"sites.{name}.{slug}", VERSION, "a WordPress version string",
                                     problems)
        sites[str(name)] = entry
    skipped = data.get("skipped") or {}
    if not isinstance(skipped, dict) or not all(isinstance(reason, str) for reason in skipped.values()):
        problems.append("skipped: must be a mapping of site names to reasons")
        skipped = {}
    for name in set(skipped) & set(sites):
        problems.append(f"skipped.{name}: the site is also under `sites`")
    return sites, {str(name): reason for name, reason in skipped.items()}


def _parse_update(entry: Any, where: str, problems: list[str], group: bool = False) -> Update | None:
    before = len(problems)
    required = {"type", "slug", "to", "artifact"} | (set() if group else {"from"})
    if not _keys(entry, where, required, {"parent"}, problems):
        return None
    if group and "from" in entry:
        problems.append(f"{where}.from: a group release names no `from`: each site's is under `sites`")
    kind = entry["type"]
    if kind not in TYPES:
        problems.append(f"{where}.type: {kind!r} is not one of core, plugin, theme")
    slug = _text(entry["slug"], f"{where}.slug", SLUG, "a slug (a folder name: a-z, 0-9, '.', '_', '-')",
                 problems)
    if kind == "core" and slug and slug != "wordpress":
        problems.append(f"{where}.slug: the core's slug is 'wordpress', not {slug!r}")
    from_version = None if group else _text(entry["from"], f"{where}.from", VERSION, "a WordPress version string",
                                             problems)
    to_version = _text(entry["to"], f"{where}.to", VERSION, "a WordPress version string", problems)
    if from_version and from_version == to_version:
        problems.append(f"{where}: from and to are both {from_version}: nothing to update")
    parent = entry.get("parent")
    if parent is not None:
        if kind != "theme":
            problems.append(f"{where}.parent: only a theme has a parent")
        parent = _text(parent, f"{where}.parent", SLUG, "a theme slug", problems)
    artifact = entry["artifact"]
    path = sha256 = ""
    if _keys(artifact, f"{where}.artifact", {"path", "sha256"}, set(), problems):
        path = _text(artifact["path"], f"{where}.artifact.path", ARTIFACT_PATH,
                     "an artifact path (a .zip, named with letters, digits, '.', '_', '-', '/')", problems)
        pure = PurePosixPath(path)
        if path and (pure.is_absolute() or ".." in pure.parts):
            problems.append(f"{where}.artifact.path: {path!r} must stay inside the state folder")
        sha256 = _text(artifact["sha256"], f"{where}.artifact.sha256", SHA256, "a sha256 (64 hex digits)",
                       problems)
    if len(problems) > before:
        return None
    return Update(type=kind, slug=slug, from_version=from_version, to_version=to_version,
                  artifact=Artifact(path=path, sha256=sha256), parent=parent or None)


def order_problems(updates: tuple[Update, ...] | list[Update]) -> list[str]:
    """DESIGN.md 6.4: core first, then plugins, then themes with a parent before its child; no repeats."""
    problems: list[str] = []
    rank = {"core": 0, "plugin": 1, "theme": 2}
    seen: dict[tuple[str, str], int] = {}
    for index, update in enumerate(updates):
        key = (update.type, update.slug)
        if key in seen:
            problems.append(f"updates[{index}]: {update.type} {update.slug} is listed twice "
                            f"(also updates[{seen[key]}])")
        seen[key] = index
        if index and rank[update.type] < rank[updates[index - 1].type]:
            problems.append(f"updates[{index}]: {update.type} {update.slug} comes after "
                            f"{updates[index - 1].type} {updates[index - 1].slug}: the order is core, "
                            "then plugins, then themes")
    positions = {u.slug: i for i, u in enumerate(updates) if u.type == "theme"}
    for index, update in enumerate(updates):
        if update.type == "theme" and update.parent in positions and positions[update.parent] > index:
            problems.append(f"updates[{index}]: child theme {update.slug} comes before its parent "
                            f"{update.parent}")
    return problems


def artifact_file(state_dir: Path, artifact: Artifact) -> Path:
    return state_dir / artifact.path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
