"""Email over SMTP: the headline and facts as plain text, then the run's Markdown report."""

from __future__ import annotations

import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from wpgate.errors import WpgateError
from wpgate.notify.message import Message

if TYPE_CHECKING:
    from wpgate.config import EmailNotify, Settings


def compose(options: "EmailNotify", message: Message) -> EmailMessage:
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
