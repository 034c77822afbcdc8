"""Gate 6.7 (completion): production holds exactly the release, nothing else changed, the site answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from wpgate import inventory, upgrader, web
from wpgate.gates import GateFailed, Plan
from wpgate.inventory import Inventory

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.7", "completion"


def differences(before: Inventory, after: Inventory, expected: dict[tuple[str, str], str]) -> list[str]:
    """How `after` differs from `before` with exactly the `expected` versions changed: {(type, slug): version}."""
    problems = []
    core_to = expected.get(("core", "wordpress"), before.core_version)
    if after.core_version != core_to:
        problems.append(f"core is {after.core_version}, expected {core_to}")
    if after.database_behind():
        problems.append(after.database_behind())
    for kind, was, now in (("plugin", before.plugins, after.plugins), ("theme", before.themes, after.themes)):
        for slug in sorted(set(was) - set(now)):
            problems.append(f"{kind} {slug} disappeared")
        for slug in sorted(set(now) - set(was)):
            problems.append(f"{kind} {slug} {now[slug]['version']} appeared, and it is not in the release")
        for slug in sorted(set(was) & set(now)):
            version = expected.get((kind, slug), was[slug]["version"])
            if now[slug]["version"] != version:
                problems.append(f"{kind} {slug} is {now[slug]['version']}, expected {version}")
            for key in ("active", "network_active", "parent"):
                if key in was[slug] and was[slug][key] != now[slug].get(key):
                    problems.append(f"{kind} {slug}: {key} was {was[slug][key]}, now {now[slug].get(key)}")
    for key in ("mu_plugins", "dropins"):
        if before.data[key] != after.data[key]:
            problems.append(f"{key.replace('_', '-')} changed")
    if after.data.get("load_error"):
        problems.append(f"WordPress fails to load with its plugins: {after.data['load_error']}")
    return problems


def describe(deployment: "Deployment") -> Plan:
    """Nothing to show before the deploy: the gate compares production after the release with before it."""
    return Plan()


def run(deployment: "Deployment") -> dict[str, Any]:
    after = inventory.read(deployment.bridge)
    deployment.run.save_json("inventory-after.json", after.data)
    expected = {(u.type, u.slug): u.to_version for u in deployment.release.updates}
    problems = differences(deployment.before, after, expected)
    state = upgrader.site_state(deployment.bridge)
    if state.get("maintenance"):
        problems.append("a .maintenance file is left: the site shows visitors a maintenance page")
    if state.get("core_updater_lock"):
        problems.append("WordPress's core_updater.lock is left in the database")
    old_leftovers = set((deployment.state_before or {}).get("upgrade_leftovers", []))
    new_leftovers = sorted(set(state.get("upgrade_leftovers", [])) - old_leftovers)
    if new_leftovers:
        problems.append(f"the upgrade left folders behind: {', '.join(new_leftovers[:5])}")
    answers = site_answers(deployment.site.url)
    problems += [problem for problem in answers.values() if problem]
    evidence = {"inventory_after": "inventory-after.json", "state": state,
                "http": {path: problem or "ok" for path, problem in answers.items()}}
    if problems:
        raise GateFailed("; ".join(problems), evidence | {"problems": problems})
    return evidence


def summary(evidence: dict[str, Any]) -> str:
    return "inventory is exactly the release, no maintenance file or lock left, the site answers"


def site_answers(url: str) -> dict[str, str | None]:
    """The home page and the wp-admin login answer a visitor: None when fine, else what is wrong."""
    results: dict[str, str | None] = {}
    with web.client(timeout=30, follow_redirects=True, headers={"User-Agent": "wpgate"}) as client:
        for path, marker in (("/", "</html>"), ("/wp-login.php", "user_login")):
            try:
                response = client.get(url + path)
            except httpx.HTTPError as error:
                results[path] = f"{url}{path} did not answer: {error}"
                continue
            if response.status_code != 200:
                results[path] = f"{url}{path} answered {response.status_code}"
            elif marker not in response.text:
                results[path] = f"{url}{path} answered 200 but the page is incomplete (no {marker})"
            else:
                results[path] = None
    return results
