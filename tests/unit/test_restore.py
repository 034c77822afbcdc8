"""What `wpgate restore` plans from a backup's inventory and the site's: which components go back, which go, and
slugs that could steer a path elsewhere refused. Pure: no site."""

from __future__ import annotations

import pytest

from wpgate.backup.model import Backup
from wpgate.errors import ExitStatus, GateRefused
from wpgate.inventory import Inventory
from wpgate.restore import Plan


def inventory(core: str, plugins: dict[str, str], themes: dict[str, str] | None = None) -> dict:
    return {"core": {"version": core}, "plugins": [{"slug": s, "version": v} for s, v in plugins.items()],
            "themes": [{"slug": s, "version": v} for s, v in (themes or {}).items()],
            "paths": {"abspath": "/srv/www/site"}}


def backup(data: dict) -> Backup:
    return Backup("production-20261126-101500-ab12", "production", "2026-11-26T10:15:00Z", "/b", None, {}, data, {})


def test_the_plan_puts_back_what_differs_and_removes_what_the_backup_lacks():
    was = inventory("6.4.5", {"hello": "1.0.0", "same": "2.0", "deleted": "0.9"}, {"parent": "1.0.0"})
    now = inventory("6.5.5", {"hello": "1.1.0", "same": "2.0", "added": "3.1"}, {"parent": "1.0.0"})
    plan = Plan(backup(was), Inventory(now), ["table wp_comments: 1 row in the backup, 2 in the database"])
    assert plan.put_back == [("core", "wordpress", "6.4.5", "6.5.5"), ("plugin", "deleted", "0.9", None),
                             ("plugin", "hello", "1.0.0", "1.1.0")]
    assert plan.removed == [("plugin", "added", "3.1")]
    lines = plan.lines("production", "https://example.com")
    assert "  puts back plugin deleted 0.9 (now missing)" in lines
    assert "  removes plugin added 3.1 (the backup does not have it)" in lines
    assert any(line.startswith("  database: goes back to the backup; these tables differ: table wp_comments") for line in lines)
    assert not plan.nothing_to_do


def test_nothing_differs():
    same = inventory("6.4.5", {"hello": "1.0.0"})
    plan = Plan(backup(same), Inventory(same), [])
    assert plan.nothing_to_do and "  nothing differs from the backup" in plan.lines("production", "https://example.com")
    assert not Plan(backup(same), Inventory(same), ["table wp_options: 9 rows in the backup, 10 in the database"]
                    ).nothing_to_do


@pytest.mark.parametrize("slug", ["../../etc", "hello/../../x", "Hello World", ""])
def test_a_slug_that_is_not_a_folder_name_is_refused(slug):
    with pytest.raises(GateRefused) as refused:
        Plan(backup(inventory("6.4.5", {slug: "1.0"})), Inventory(inventory("6.4.5", {})), [])
    assert refused.value.exit_code == ExitStatus.REFUSED and "nothing was changed" in str(refused.value)
