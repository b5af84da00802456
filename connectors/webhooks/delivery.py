"""Sending deliveries: signed the Standard Webhooks way, tried on a schedule, each try logged.

A worker claims a batch of due deliveries (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL,
so two workers never take the same one) and leases them by moving `next_attempt_at` past the
longest a send can take; it commits, sends the batch side by side with no transaction open,
then records each try in a short transaction of its own. A worker killed mid-send leaves its
deliveries due again when the lease runs out: the receiver may get a message twice (at least
once), always with the same `webhook-id`, which is what it drops repeats by.

Each try signs afresh (`webhook-timestamp` is the time of the try, as receivers refuse old
ones). A 2xx answer delivers; anything else (an error status, a redirect, which is never
followed, no answer within WEBHOOK_TIMEOUT, a refused connection) is retried after the next
delay of WEBHOOK_RETRY_SCHEDULE, and the delivery fails when the schedule is spent. "Retry now"
puts a failed delivery back for one more try.
"""

import contextlib
import json
import logging
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from connectors.models import DeliveryState, WebhookAttempt, WebhookDelivery
from connectors.webhooks import secrets

logger = logging.getLogger(__name__)

# Deliveries one worker sends side by side in one batch (each in its own thread).
SEND_BATCH = 10
EXCERPT_CHARS = 500
USER_AGENT = "PIM-Portal-Webhooks/1"


def retry_schedule() -> list[float]:
    """Seconds to wait before each try: the first for the first try, and so on (settings:
    Standard Webhooks' schedule, eight tries in about a day and a day)."""
    return [float(delay) for delay in settings.WEBHOOK_RETRY_SCHEDULE]


def send_timeout() -> float:
    return float(settings.WEBHOOK_TIMEOUT)


def lease() -> timedelta:
    """Longer than a send can last (connect, then answer, each within the timeout)."""
    return timedelta(seconds=3 * send_timeout() + 10)


def body_of(payload: dict) -> str:
    """The bytes on the wire (and under the signature): compact JSON, keys in a fixed order."""
    return json.dumps(
        payload, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


def signed_headers(message_id: str, body: str, signing_secrets: list[str], at: datetime) -> dict:
    """The three Standard Webhooks headers; one signature per secret (two while rotating)."""
    signatures = " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
        for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass
class Outcome:
    at: datetime
    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0
    excerpt: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _reason(error: Exception) -> str:
    """The cause of a failed connection in a few words ("Connection refused")."""
    found = _ERRNO.search(str(error))
    if found:
        return found.group(1).strip()
    return error.__class__.__name__


def _error_of(error: requests.RequestException, timeout: float) -> str:
    if isinstance(error, requests.ConnectTimeout):
        return f"No connection within {timeout:g} s."
    if isinstance(error, requests.ReadTimeout):
        return f"No answer within {timeout:g} s."
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS failed: {_reason(error)}."
    if isinstance(error, requests.ConnectionError):
        return f"Could not connect: {_reason(error)}."
    return f"The request failed: {error.__class__.__name__}."


def _answer_error(response: requests.Response) -> str:
    code = response.status_code
    if 200 <= code < 300:
        return ""
    if 300 <= code < 400:
        where = response.headers.get("location", "")
        return f"HTTP {code}: redirects are not followed{f' (to {where[:200]})' if where else ''}."
    return f"HTTP {code} {response.reason or ''}".strip() + "."


def send(url: str, message_id: str, body: str, signing_secrets: list[str]) -> Outcome:
    """Post one message; what the receiver answered, or why it did not. Never raises."""
    at = timezone.now()
    timeout = send_timeout()
    started = time.monotonic()
    outcome = Outcome(at=at)
    try:
        headers = signed_headers(message_id, body, signing_secrets, at)
        with requests.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            outcome.status_code = response.status_code
            outcome.error = _answer_error(response)
            try:
                raw = response.raw.read(EXCERPT_CHARS, decode_content=True) or b""
            except (requests.RequestException, OSError, ValueError):
                raw = b""  # the status is what counts; a body cut short is no failure
            outcome.excerpt = raw.decode(errors="replace")[:EXCERPT_CHARS]
    except requests.RequestException as error:
        outcome.error = _error_of(error, timeout)
    except Exception as error:  # a bad secret, an unusable URL: logged as the try's error
        logger.exception("Webhook %s could not be sent", message_id)
        outcome.error = f"The portal could not send it: {error.__class__.__name__}."
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


# Claiming, sending and recording ----------------------------------------------------------


@dataclass
class Claimed:
    """A leased delivery, with what sending it needs (read while the claim was made)."""

    pk: int
    claim: str
    attempts: int
    url: str
    message_id: str
    body: str
    signing_secrets: list[str] = field(default_factory=list)
    unreadable: str = ""  # why the secret could not be read, if it could not


def due(now: datetime):
    return WebhookDelivery.objects.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=now, subscription__enabled=True
    )


def next_due() -> datetime | None:
    """When the first pending delivery of an enabled subscription may go. One query."""
    return (
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, subscription__enabled=True)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def _signing_secrets(subscription, now: datetime) -> list[str]:
    chosen = [secrets.decrypt(subscription.secret_encrypted)]
    until = subscription.previous_secret_until
    if subscription.previous_secret_encrypted and until and until > now:
        # The new secret signs in any case; the old one is only a courtesy.
        with contextlib.suppress(secrets.SecretUnreadable):
            chosen.append(secrets.decrypt(subscription.previous_secret_encrypted))
    return chosen


def claim(now: datetime, limit: int, *, first_only: bool = False) -> list[Claimed]:
    """Lease up to `limit` due deliveries no other worker holds (one short transaction)."""
    queryset = due(now)
    if first_only:
        queryset = queryset.filter(attempts=0)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        # SQLite has no row locks; its IMMEDIATE transactions let one writer in at a time.
        batch = list(
            queryset.select_related("subscription").order_by("next_attempt_at", "pk")[:limit]
        )
        if not batch:
            return []
        token = uuid.uuid4().hex
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in batch]).update(
            claim=token, next_attempt_at=timezone.now() + lease()
        )
    claimed = []
    for delivery in batch:
        item = Claimed(
            pk=delivery.pk,
            claim=token,
            attempts=delivery.attempts,
            url=delivery.subscription.url,
            message_id=delivery.message_id,
            body=body_of(delivery.payload),
        )
        try:
            item.signing_secrets = _signing_secrets(delivery.subscription, now)
        except secrets.SecretUnreadable as unreadable:
            item.unreadable = str(unreadable)
        claimed.append(item)
    return claimed


def _send_all(claimed: list[Claimed]) -> list[Outcome]:
    """Send side by side; a send that outlasts every timeout is logged as unanswered."""
    outcomes: list[Outcome | None] = [None] * len(claimed)
    to_send = []
    for index, item in enumerate(claimed):
        if item.unreadable:
            outcomes[index] = Outcome(at=timezone.now(), error=item.unreadable)
        else:
            to_send.append(index)
    if to_send:
        pool = ThreadPoolExecutor(max_workers=len(to_send), thread_name_prefix="webhook")
        futures = {
            pool.submit(
                send,
                claimed[i].url,
                claimed[i].message_id,
                claimed[i].body,
                claimed[i].signing_secrets,
            ): i
            for i in to_send
        }
        started = timezone.now()
        done, _ = wait_for(futures, timeout=2 * send_timeout() + 5)
        for future, index in futures.items():
            if future in done:
                outcomes[index] = future.result()
            else:
                outcomes[index] = Outcome(
                    at=started,
                    error=f"No answer within {send_timeout():g} s.",
                    duration_ms=int((timezone.now() - started).total_seconds() * 1000),
                )
        pool.shutdown(wait=False, cancel_futures=True)
    return [outcome for outcome in outcomes if outcome is not None]


def _next_try(attempts: int, failed_at: datetime) -> datetime | None:
    """When to try again after `attempts` tries have failed; None when the schedule is spent."""
    delays = retry_schedule()
    if attempts >= len(delays):
        return None
    return failed_at + timedelta(seconds=delays[attempts])


def record(item: Claimed, outcome: Outcome) -> None:
    """Log the try and move the delivery on: delivered, due again later, or failed.

    The try is logged in any case (it happened); the delivery moves only while this batch still
    holds it (another worker took it over if the lease ran out)."""
    attempts = item.attempts + 1
    finished = timezone.now()
    changes: dict = {
        "attempts": attempts,
        "last_status": outcome.status_code,
        "last_error": outcome.error,
        "claim": "",
    }
    if outcome.delivered:
        changes.update(state=DeliveryState.DELIVERED, delivered_at=finished, next_attempt_at=None)
    else:
        retry_at = _next_try(attempts, finished)
        if retry_at is None:
            changes.update(state=DeliveryState.FAILED, next_attempt_at=None)
        else:
            changes.update(next_attempt_at=retry_at)
    try:
        with transaction.atomic():
            if not WebhookDelivery.objects.filter(pk=item.pk).exists():
                return  # its subscription was deleted meanwhile
            WebhookAttempt.objects.create(
                delivery_id=item.pk,
                at=outcome.at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                response_excerpt=outcome.excerpt,
            )
            moved = WebhookDelivery.objects.filter(
                pk=item.pk, claim=item.claim, state=DeliveryState.PENDING
            ).update(**changes)
    except IntegrityError:
        return  # deleted with its subscription between the check and the commit
    if not moved:
        logger.warning(
            "Webhook %s was taken over by another worker while this one sent it",
            item.message_id,
        )


def deliver_batch(now: datetime, limit: int, *, first_only: bool = False) -> int:
    """Claim, send and record up to `limit` (at most SEND_BATCH) due deliveries. How many."""
    claimed = claim(now, min(limit, SEND_BATCH), first_only=first_only)
    if not claimed:
        return 0
    for item, outcome in zip(claimed, _send_all(claimed), strict=True):
        record(item, outcome)
    return len(claimed)
