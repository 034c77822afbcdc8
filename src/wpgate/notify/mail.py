"""Email over SMTP: the headline and facts as plain text, then the run's Markdown report."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from wpgate.config_types import Duration, EnvName, Strict
from wpgate.errors import WpgateError
from wpgate.notify.message import Message

if TYPE_CHECKING:
    from email.message import EmailMessage

    from wpgate.config import Settings


class EmailNotify(Strict):
    """A mail server that takes the message (SMTP), and who gets it."""

    host: str
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    user: str | None = None
    password_env: EnvName | None = None
    starttls: bool = False
    timeout: Duration = "15s"  # type: ignore[assignment]

    @field_validator("to")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return addresses

    @model_validator(mode="after")
    def _login(self) -> "EmailNotify":
        if (self.user is None) != (self.password_env is None):
            raise ValueError("user and password_env go together (both, or neither for a server without login)")
        if self.user and not self.starttls and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"a login to {self.host} needs starttls: true, or the password would cross the "
                             "network in the clear")
        return self


Options = EmailNotify  # `notify.email` in the config


def compose(options: "EmailNotify", message: Message) -> "EmailMessage":
    # Imported here, as smtplib and ssl in send(): every command loads the config, which names this module.
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = options.sender
    mail["To"] = ", ".join(options.to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="wpgate")
    facts = "\n".join(f"{title}: {value}" if "\n" not in value else f"{title}:\n  " + value.replace("\n", "\n  ")
                      for title, value in message.fields)
    mail.set_content(f"{message.text}\n\n{facts}\n\n---\n\n{message.markdown}")
    return mail


def send(options: "EmailNotify", message: Message, settings: "Settings") -> str:
    import smtplib
    import ssl

    where = f"{options.host}:{options.port}"
    password = os.environ.get(options.password_env or "", "")
    try:
        with smtplib.SMTP(options.host, options.port, timeout=options.timeout) as server:
            if options.starttls:
                server.starttls(context=ssl.create_default_context())
            if options.user:
                server.login(options.user, password)
            refused = server.send_message(compose(options, message))
    except (OSError, smtplib.SMTPException) as error:
        detail = str(error).replace(password, "***") if password else str(error)
        raise WpgateError(f"mail server {where}: {type(error).__name__}: {detail}") from None
    if refused:
        raise WpgateError(f"mail server {where} refused {', '.join(sorted(refused))}")
    return f"{', '.join(options.to)} via {where}"
