"""The inventory's human view: a site's own text is shown as text, never read as markup."""

import io

from rich.console import Console

from wpgate.inventory import Inventory
from wpgate.inventory_view import render


def test_names_from_the_site_are_not_markup():
    data = {
        "core": {"version": "6.5.5", "db_version": 57155, "files_db_version": 57155},
        "plugins": [{"slug": "evil", "file": "evil/evil.php", "name": "Evil [/bold] [red]x", "version": "1.0",
                     "active": True, "network_active": False}],
        "themes": [{"slug": "t", "name": "[link=http://x]T[/link]", "version": "1", "active": True, "parent": None}],
        "mu_plugins": [{"file": "m.php", "name": "[/]", "version": ""}], "dropins": [],
        "php_version": "8.2", "multisite": False, "maintenance": True, "home": "http://[/x]",
        "load_error": "PHP fatal error: [/oops] in x.php",
    }
    output = io.StringIO()
    render(Inventory(data), "site", Console(file=output, width=200))
    text = output.getvalue()
    for shown in ("Evil [/bold] [red]x", "[link=http://x]T[/link]", "[/oops]", "MAINTENANCE MODE ON", "http://[/x]"):
        assert shown in text
