"""`wpgate inventory`'s human view: a heading line and one table per kind of component, on the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from wpgate.inventory import Inventory


def render(inventory: Inventory, site_name: str, console: Console) -> None:
    """The human view: a heading line and one table per kind of component."""
    data = inventory.data
    core = data["core"]
    flags = []
    if data.get("multisite"):
        flags.append("multisite")
    if data.get("maintenance"):
        flags.append("[bold red]MAINTENANCE MODE ON (.maintenance present)[/]")
    # Everything below comes from the site: names and messages are text, never markup.
    console.print(f"[bold]{escape(site_name)}[/]  {escape(str(data.get('home', '')))}")
    if data.get("load_error"):
        console.print(f"[bold red]WordPress fails to load with its plugins and theme:[/] {escape(data['load_error'])}",
                      soft_wrap=True)
    console.print(f"WordPress [bold]{core['version']}[/] (database version {core['db_version']}"
                  + (f", files expect {core['files_db_version']}" if core.get("files_db_version") not in
                     (None, core["db_version"]) else "")
                  + f")  ·  PHP {data['php_version']}" + (f"  ·  {', '.join(flags)}" if flags else ""))

    table = Table(title="Plugins", title_justify="left", show_edge=False)
    for column in ("slug", "version", "state", "name"):
        table.add_column(column)
    for plugin in sorted(data["plugins"], key=lambda p: p["slug"]):
        state = "network active" if plugin["network_active"] else ("active" if plugin["active"] else "inactive")
        table.add_row(*map(Text, (plugin["slug"], plugin["version"] or "-", state, plugin["name"])))
    console.print(table)

    table = Table(title="Themes", title_justify="left", show_edge=False)
    for column in ("slug", "version", "state", "parent", "name"):
        table.add_column(column)
    for theme in sorted(data["themes"], key=lambda t: t["slug"]):
        table.add_row(*map(Text, (theme["slug"], theme["version"] or "-",
                                  "active" if theme["active"] else "inactive", theme["parent"] or "", theme["name"])))
    console.print(table)

    for key, title in (("mu_plugins", "Must-use plugins"), ("dropins", "Drop-ins")):
        if data.get(key):
            table = Table(title=title, title_justify="left", show_edge=False)
            for column in ("file", "version", "name"):
                table.add_column(column)
            for item in data[key]:
                table.add_row(*map(Text, (item["file"], item.get("version") or "-", item.get("name") or "")))
            console.print(table)
