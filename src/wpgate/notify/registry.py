"""The notifiers a site's `notify:` may name, the one registry of them: each key → its module, which holds its
options' model (`Options`, the config's `notify.KEY`) and `send(options, message, settings)`. Adding a
notifier is one module in this folder and one line here."""

from __future__ import annotations

from types import ModuleType

from wpgate.notify import mail, webhook

NOTIFIERS: dict[str, ModuleType] = {
    "webhook": webhook,
    "email": mail,
}
