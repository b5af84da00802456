"""Mail helper: every notification is HTML and plain text, rendered from a template pair."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def send_templated_mail(*, template: str, recipients: Iterable[str], context: dict) -> int:
    """Render `<template>_subject.txt`, `.txt` and `.html` and send one mail per recipient.

    Returns the number of mails sent. Recipients are de-duplicated and blanks dropped.
    """
    addresses = sorted({address.strip().lower() for address in recipients if address})
    if not addresses:
        return 0
    context = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"{template}_subject.txt", context).strip().replace("\n", " ")
    text = render_to_string(f"{template}.txt", context)
    html = render_to_string(f"{template}.html", context)
    sent = 0
    for address in addresses:
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
        message.attach_alternative(html, "text/html")
        try:
            sent += message.send()
        except OSError:
            logger.exception("Could not send %r to %s", subject, address)
    return sent
