"""The `wpgate` command line: parses arguments, runs one command, maps errors to DESIGN.md's exit codes."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

import click
from rich.console import Console

from wpgate import __version__, config
from wpgate.bridge import Bridge
from wpgate.errors import EXIT_INTERRUPTED, WpgateError
from wpgate import inventory as inventory_module
from wpgate.transports import for_site

console = Console(stderr=True, highlight=False)


class Context:
    """What every command needs: the config file (loaded on first use)."""

    def __init__(self, config_option: str | None) -> None:
        self.config_path = config.resolve_path(config_option)
        self._settings: config.Settings | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_option", metavar="CONFIG",
              help="Config file (default: $WPGATE_CONFIG, else ./wpgate.yml).")
@click.option("-v", "--verbose", is_flag=True, help="Log every command run on a host (secrets masked).")
@click.version_option(__version__, prog_name="wpgate")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, verbose: bool) -> None:
    """Replicate the WordPress updates tested on staging onto production, one gate at a time."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(message)s")
    ctx.obj = Context(config_option)


@cli.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.pass_obj
def inventory(obj: Context, site: str, as_json: bool) -> None:
    """Versions of core, plugins, themes, must-use plugins and drop-ins on SITE."""
    settings = obj.settings
    site_config = settings.site(site)
    with for_site(site_config) as transport:
        found = inventory_module.read(Bridge(site, site_config, transport))
    if as_json:
        click.echo(json.dumps(found.data, indent=2))
    else:
        inventory_module.render(found, site, console)


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"),
              show_default=True, help="Where the demo writes its config and state.")
def demo(folder: Path) -> None:
    """Build a local staging + production pair and show them through wpgate."""
    from wpgate import demo as demo_module

    raise SystemExit(demo_module.run(folder.resolve(), console))


def _write_traceback(obj: Context | None) -> Path:
    folder = Path(tempfile.gettempdir())
    if obj is not None and obj._settings is not None:
        folder = obj._settings.state_dir / "errors"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"traceback-{time.strftime('%Y%m%dT%H%M%S')}.txt"
        path.write_text(traceback.format_exc())
    except OSError:
        path = Path(tempfile.mkstemp(prefix="wpgate-traceback-", suffix=".txt")[1])
        path.write_text(traceback.format_exc())
    return path


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with the code DESIGN.md gives for how it ended."""
    ctx_obj: Context | None = None
    try:
        with cli.make_context("wpgate", list(sys.argv[1:] if argv is None else argv)) as ctx:
            ctx_obj = ctx.obj
            cli.invoke(ctx)
        code = 0
    except click.exceptions.Exit as done:
        code = done.exit_code
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    except click.ClickException as error:
        error.show()
        code = 2
    except click.Abort:
        console.print("wpgate: interrupted")
        code = EXIT_INTERRUPTED
    except WpgateError as error:
        console.print(f"wpgate: error: {error}", markup=False, soft_wrap=True)
        code = error.exit_code
    except KeyboardInterrupt:
        console.print("wpgate: interrupted")
        code = EXIT_INTERRUPTED
    except Exception as error:  # an unexpected failure: one line here, the traceback in a file
        path = _write_traceback(ctx_obj)
        console.print(f"wpgate: unexpected error: {type(error).__name__}: {error} (traceback in {path})",
                      markup=False, soft_wrap=True)
        code = 1
    sys.exit(code)
