"""Outgoing mail (aiosmtplib): invitations and email reports. Off unless `mail.smtp_host`
is set."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage

import aiosmtplib

from app.config import MailSettings

log = logging.getLogger("avocet")


class Mailer:
    """Sends mail through the configured SMTP server: plain text, with an HTML alternative
    when given one."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.from_address)

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        """True when the server took the mail; False (logged) when it could not be sent, so
        the caller can fall back to showing the link."""
        if not self.enabled:
            return False
        s = self.settings
        message = EmailMessage()
        message["From"] = s.from_address
        message["To"] = to
        message["Subject"] = subject
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
                timeout=s.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail to %s not sent: %s", to, exc)
            return False
        return True
