"""Notifications at the end of a deploy: one small sender per channel, an explicit registry, and one rule:
a notifier that fails is a warning line and a note in report.json, never a change to the run's outcome."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from wpgate.notify.message import Message
from wpgate.notify.registry import NOTIFIERS

if TYPE_CHECKING:  # the config imports this package's registry: nothing of the config at import time
    from wpgate.output import Output

    from wpgate.config import Settings


def send_all(settings: Settings, site_name: str, report: dict[str, Any], markdown: str,
             console: Output) -> list[dict[str, Any]]:
    """Send every notification the site configures for this outcome; what each did, for report.json."""
    config = settings.site(site_name).notify
    if config is None or report.get("status") not in config.on:
        return []
    return send(settings, channels(config), Message.of(report, markdown), console)


def channels(config: Any) -> list[tuple[str, Any]]:
    """The notifiers a site's `notify` configures, in the registry's order: (name, options)."""
    return [(name, getattr(config, name)) for name in NOTIFIERS if getattr(config, name) is not None]


def send(settings: Settings, through: Iterable[tuple[str, Any]], message: Message, console: Output, *,
         ending: str = "run") -> list[dict[str, Any]]:
    """Send `message` through each (name, options) channel of `through`; what each did. A notifier that fails
    is a warning line: the `ending`'s (a run's, a rollout's) outcome is unchanged."""
    results = []
    for name, options in through:
        try:
            where = NOTIFIERS[name].send(options, message, settings)
        except Exception as error:  # whatever breaks in a notifier, the outcome stands
            reason = _reason(error)
            console.print(f"wpgate: warning: the {name} notification was not sent: {reason} "
                          f"(the {ending}'s outcome is unchanged)", markup=False, soft_wrap=True)
            results.append({"notifier": name, "sent": False, "error": reason})
        else:
            results.append({"notifier": name, "sent": True, "to": where})
    return results


def after_run(settings: Settings, run: Any, console: Output) -> None:
    """Send the site's notifications for a run that has ended (deploy, resume, rollback) and record what
    they did in report.json; a notifier's failure is a warning line, never a change to the run's outcome
    or exit code."""
    from wpgate.report import markdown
    from wpgate.report.facts import Facts, read_journal

    try:
        text = markdown.render(Facts(run.report(), run.folder, read_journal(run.folder / "journal.jsonl")))
        results = send_all(settings, run.site, run.report(), text, console)
    except Exception as error:  # the run's error, if any, is the one reported
        results = [{"notifier": "all", "sent": False, "error": f"{type(error).__name__}: {error}"}]
        console.print(f"wpgate: warning: notifications failed: {error} (the run's outcome is unchanged)",
                      markup=False, soft_wrap=True)
    if results:
        run.extra["notifications"] = results
        run.write_report()


@contextmanager
def notifying(settings: Settings, run: Any, output: Output, *, enabled: bool = True) -> Iterator[None]:
    """The one ending of a command that may end a run (deploy, resume, rollback), however the block ends:
    when the run's status changed (it ended: complete, refused, rolled back or not), the site's notifiers are
    told and what they did is recorded. A notifier that fails is a warning; the run's own error is the one
    raised, its report taken again with the notifications in it. A run left as it was sends nothing."""
    status = run.status
    try:
        yield
    except BaseException as error:
        if enabled and run.status not in (status, "running"):
            after_run(settings, run, output)
            if getattr(error, "report", None) is not None:
                error.report = run.report()  # type: ignore[attr-defined]
        raise
    if enabled and run.status not in (status, "running"):
        after_run(settings, run, output)


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())[:300]
