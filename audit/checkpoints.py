"""Signed checkpoints of the audit chain, and the verification that holds the chain to them.

The hash chain shows an edit, but whoever can write the tables can rewrite them whole, every
hash and the head recomputed. A checkpoint is a signed statement "link number `seq` of the
chain has hash `head_hash`", made every few minutes with an Ed25519 private key the database
does not hold. Nobody without the key can sign a new one, so a rewritten, truncated or cut
chain contradicts the checkpoints made before the forgery, and `chain_verify` names the first.

Keys (settings; a verifier needs only the public key):

- AUDIT_SIGNING_KEY_FILE: a PEM file holding the PKCS8 private key (`manage.py audit_keys`);
  or AUDIT_SIGNING_KEY: the raw 32-byte private key, base64 (one line, for a secret store).
- AUDIT_VERIFY_KEY_FILE: a PEM file of one or more public keys (SubjectPublicKeyInfo; keep
  the old ones after a rotation); or AUDIT_VERIFY_KEY: raw 32-byte public keys, base64,
  separated by commas or spaces. The signing key's own public key is always trusted too.
- AUDIT_CHECKPOINT_FILE: also append every checkpoint there as a JSON line, off the database
  host; `chain_verify` reads it back, so a checkpoint deleted from the table still counts.

What the signature covers is `signed_statement()`: the model's `statement()`, and whether the
checkpoint prunes (a flag the database must not be able to set on a checkpoint of its choice).
A checkpoint signs only a chain that extends the last one it signed: the sealer's output is
walked from there first, so no forgery made between two checkpoints is ever signed.
"""

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit.log import seal_all, walk_chain
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent, ChainVerification

logger = logging.getLogger(__name__)

PEM_PUBLIC_KEY = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)
LOOKUP_BATCH = 500


class CheckpointRefused(Exception):
    """The chain does not extend the last signed checkpoint: signing it would launder a forgery."""


# Keys --------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: SHA-256 of the raw 32-byte public key, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signing_key() -> Ed25519PrivateKey | None:
    """The private key from AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY; None if neither is set."""
    path = getattr(settings, "AUDIT_SIGNING_KEY_FILE", "") or ""
    value = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    if path and value:
        raise ImproperlyConfigured("Set AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY, not both.")
    if path:
        try:
            key = serialization.load_pem_private_key(_read(path, "AUDIT_SIGNING_KEY_FILE"), None)
        except (ValueError, TypeError) as error:
            raise ImproperlyConfigured(
                f"AUDIT_SIGNING_KEY_FILE {path} is not an unencrypted PKCS8 PEM private key."
            ) from error
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY_FILE {path} is not an Ed25519 key.")
        return key
    if value:
        return Ed25519PrivateKey.from_private_bytes(_raw_key(value, "AUDIT_SIGNING_KEY"))
    return None


def verify_keys() -> dict[str, Ed25519PublicKey]:
    """Every public key a checkpoint may be signed with, by key id (empty: not configured)."""
    keys: list[Ed25519PublicKey] = []
    path = getattr(settings, "AUDIT_VERIFY_KEY_FILE", "") or ""
    if path:
        blocks = PEM_PUBLIC_KEY.findall(_read(path, "AUDIT_VERIFY_KEY_FILE"))
        if not blocks:
            raise ImproperlyConfigured(f"AUDIT_VERIFY_KEY_FILE {path} holds no PEM public key.")
        for block in blocks:
            key = serialization.load_pem_public_key(block)
            if not isinstance(key, Ed25519PublicKey):
                raise ImproperlyConfigured(f"AUDIT_VERIFY_KEY_FILE {path} holds a non-Ed25519 key.")
            keys.append(key)
    for value in re.split(r"[\s,]+", getattr(settings, "AUDIT_VERIFY_KEY", "") or ""):
        if value:
            keys.append(Ed25519PublicKey.from_public_bytes(_raw_key(value, "AUDIT_VERIFY_KEY")))
    private = signing_key()
    if private is not None:
        keys.append(private.public_key())
    return {key_id(key): key for key in keys}


def checkpoints_configured() -> bool:
    return bool(verify_keys())


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"{setting} {path} cannot be read: {error}.") from error


def _raw_key(value: str, setting: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ImproperlyConfigured(f"{setting} is not base64.") from error
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{setting} must be the raw 32-byte key, base64.")
    return raw


# Signing -----------------------------------------------------------------------------------


def signed_statement(checkpoint: AuditCheckpoint) -> bytes:
    """What the signature covers (the model's statement, the prune flag included)."""
    return checkpoint.statement()


def signature_problem(checkpoint: AuditCheckpoint, keys: dict[str, Ed25519PublicKey]) -> str:
    """Why the checkpoint's signature does not hold ("" when it does)."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return (
            f"the {describe(checkpoint)} is signed with key {checkpoint.key_id[:12]}..., which "
            "is not a configured verify key"
        )
    try:
        key.verify(base64.b64decode(checkpoint.signature), signed_statement(checkpoint))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"the {describe(checkpoint)} has a bad signature: it was forged"
    return ""


def describe(checkpoint: AuditCheckpoint) -> str:
    """How reports name a checkpoint: the event it signs and when it was made."""
    kind = "signed prune checkpoint" if checkpoint.prunes_up_to else "signed checkpoint"
    moment = checkpoint.created_at.astimezone(UTC)
    return f"{kind} of event #{checkpoint.seq} made {moment:%Y-%m-%d %H:%M:%S} UTC"


def checkpoint_make(now: datetime | None = None) -> AuditCheckpoint | None:
    """Seal, then sign the chain's head, unless it has not moved since the last checkpoint.

    None when no signing key is configured, the chain is empty, or the head did not move.
    The chain from the last trusted checkpoint to the head is walked first; a chain that does
    not extend it is refused (CheckpointRefused), never signed. Also appended to
    AUDIT_CHECKPOINT_FILE and sent to the SIEM stream, after commit.
    """
    key = signing_key()
    if key is None:
        return None
    seal_all()
    keys = verify_keys()
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or head.seq == 0:
        return None
    last = newest_trusted(keys)
    if last is not None and (last.seq, last.head_hash) == (head.seq, head.hash):
        return None
    # Outside any lock: a first walk of a long chain must not hold up writers or sealers.
    _refuse_unless_extends(last, head)
    with transaction.atomic():
        # One checkpoint maker at a time: a second one waits, then finds the head signed.
        AuditChainHead.objects.select_for_update().filter(pk=1).first()
        newest = newest_trusted(keys)
        if newest is not None and newest.seq >= head.seq:
            return None
        return checkpoint_sign(
            key=key, seq=head.seq, head_hash=head.hash, now=now or timezone.now()
        )


def checkpoint_sign(
    *,
    key: Ed25519PrivateKey,
    seq: int,
    head_hash: str,
    now: datetime,
    prunes_up_to: bool = False,
) -> AuditCheckpoint:
    """Sign and store one checkpoint, and send it off the database host after commit."""
    checkpoint = AuditCheckpoint(
        seq=seq,
        head_hash=head_hash,
        # UTC: the statement is signed as the database will give the time back.
        created_at=now.astimezone(UTC),
        key_id=key_id(key.public_key()),
        prunes_up_to=prunes_up_to,
    )
    checkpoint.signature = base64.b64encode(key.sign(signed_statement(checkpoint))).decode()
    checkpoint.save()
    _publish(checkpoint)
    return checkpoint


def newest_trusted(keys: dict[str, Ed25519PublicKey]) -> AuditCheckpoint | None:
    """The checkpoint of the highest event whose signature holds."""
    candidates = AuditCheckpoint.objects.filter(key_id__in=list(keys)).order_by("-seq", "-id")
    for checkpoint in candidates.iterator(chunk_size=50):
        problem = signature_problem(checkpoint, keys)
        if not problem:
            return checkpoint
        logger.error("Audit checkpoint %s: %s", checkpoint.pk, problem)
    return None


def _refuse_unless_extends(last: AuditCheckpoint | None, head: AuditChainHead) -> None:
    if last is not None and last.seq >= head.seq:
        raise CheckpointRefused(
            f"Not signing the audit chain: its head #{head.seq} does not extend the "
            f"{describe(last)}."
        )
    after = None if last is None else (last.seq, last.head_hash)
    pruned = [] if last is not None else _trusted_prunes()
    walk = walk_chain(after=after, pruned=pruned, up_to=head.seq)
    problem = walk.broken
    if problem is None and (walk.last_seq, walk.last_hash) != (head.seq, head.hash):
        problem = f"the chain head #{head.seq} does not match the last event walked"
    if problem:
        raise CheckpointRefused(f"Not signing the audit chain: {problem}.")


def _trusted_prunes() -> list[tuple[int, str]]:
    keys = verify_keys()
    prunes = AuditCheckpoint.objects.filter(prunes_up_to=True, key_id__in=list(keys))
    return [(c.seq, c.head_hash) for c in prunes if not signature_problem(c, keys)]


# Off the database host ---------------------------------------------------------------------


def checkpoint_json(checkpoint: AuditCheckpoint) -> dict:
    """A checkpoint as the file (and any verifier off the host) keeps it."""
    return {
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "created_at": checkpoint.created_at.astimezone(UTC).isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "prunes_up_to": checkpoint.prunes_up_to,
    }


def _publish(checkpoint: AuditCheckpoint) -> None:
    path = getattr(settings, "AUDIT_CHECKPOINT_FILE", "") or ""
    if path:
        transaction.on_commit(lambda: _append_to_file(path, checkpoint), robust=True)
    send = _siem_sender()
    if send is not None:
        transaction.on_commit(lambda: send(checkpoint), robust=True)


def _siem_sender():
    """audit.siem.send_checkpoint, once the SIEM stream exists."""
    try:
        from audit.siem import send_checkpoint
    except ImportError:
        return None
    return send_checkpoint


def _append_to_file(path: str, checkpoint: AuditCheckpoint) -> None:
    line = json.dumps(checkpoint_json(checkpoint), sort_keys=True) + "\n"
    try:
        # One write of a whole line with O_APPEND: several processes never interleave lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        logger.exception("Could not append audit checkpoint #%s to %s", checkpoint.seq, path)


def read_checkpoint_file(path: str) -> list[AuditCheckpoint]:
    """The checkpoints of a file written by `_append_to_file` (unsaved); [] if it is missing."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
            found.append(
                AuditCheckpoint(
                    seq=int(fields["seq"]),
                    head_hash=str(fields["head_hash"]),
                    created_at=datetime.fromisoformat(fields["created_at"]),
                    key_id=str(fields["key_id"]),
                    signature=str(fields["signature"]),
                    prunes_up_to=bool(fields.get("prunes_up_to", False)),
                )
            )
        except (ValueError, KeyError, TypeError):
            # A line cut short by a crash mid-write; what it said is lost, not forged.
            logger.warning("Line %s of the audit checkpoint file %s is unreadable", number, path)
    return found


# Verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """One verification: its recorded row, and what the report says beyond it."""

    record: ChainVerification
    configured: bool  # a verify key is set: the checkpoints were checked
    first_contradicted: AuditCheckpoint | None = None  # by the chain as it stands now
    first_forged: AuditCheckpoint | None = None  # a bad signature or an unknown key
    pruned_up_to: int | None = None  # the chain starts after this pruned event
    newest: AuditCheckpoint | None = None  # the checkpoint of the highest event that holds

    @property
    def ok(self) -> bool:
        return self.record.ok


def chain_verify(*, now: datetime | None = None, checkpoint_file: str | None = None) -> Verified:
    """Walk the chain and hold it to every signed checkpoint; record the outcome.

    The checkpoints are the table's and those of `checkpoint_file` (default
    AUDIT_CHECKPOINT_FILE). Each must carry a good signature by a verify key (one that does
    not is a forgery), and the event it signs must be there with its hash; the first one the
    chain contradicts is named. A chain whose oldest events the retention removed starts at
    its first remaining event, linked to the signed prune checkpoint of the pruned head.
    Without a verify key only the chain is walked, and the report says checkpoints are not
    configured.
    """
    keys = verify_keys()
    if checkpoint_file is None:
        checkpoint_file = getattr(settings, "AUDIT_CHECKPOINT_FILE", "") or ""
    signed: list[AuditCheckpoint] = []
    forged: list[tuple[AuditCheckpoint, str]] = []
    if keys:
        for checkpoint in _every_checkpoint(checkpoint_file):
            problem = signature_problem(checkpoint, keys)
            if problem:
                forged.append((checkpoint, problem))
            else:
                signed.append(checkpoint)
    prunes = [(c.seq, c.head_hash) for c in signed if c.prunes_up_to]
    walk = walk_chain(pruned=prunes)
    contradicted, matched = _contradictions(signed, prunes)
    problems = [walk.broken]
    problems += [forged[0][1] if forged else None, contradicted[1] if contradicted else None]
    problem = "; ".join(p for p in problems if p)
    up_to_seq, up_to_at = walk.last_seq, walk.last_at
    if contradicted and (up_to_seq is None or contradicted[0].seq <= up_to_seq):
        up_to_seq, up_to_at = _last_attested_before(contradicted[0], matched)
    record = ChainVerification.objects.create(
        ran_at=now or timezone.now(),
        ok=not problem,
        checked=walk.checked,
        up_to_seq=up_to_seq,
        up_to_at=up_to_at,
        checkpoints=len(matched),
        problem=problem,
    )
    return Verified(
        record=record,
        configured=bool(keys),
        first_contradicted=contradicted[0] if contradicted else None,
        first_forged=forged[0][0] if forged else None,
        pruned_up_to=_pruned_up_to(prunes),
        newest=max(matched, key=lambda c: (c.seq, c.created_at), default=None),
    )


def _every_checkpoint(checkpoint_file: str) -> list[AuditCheckpoint]:
    """The table's checkpoints and the file's that the table lacks, by event and time."""
    found = list(AuditCheckpoint.objects.order_by("seq", "created_at", "id"))
    known = {_identity(c) for c in found}
    for checkpoint in read_checkpoint_file(checkpoint_file) if checkpoint_file else []:
        if _identity(checkpoint) not in known:
            known.add(_identity(checkpoint))
            found.append(checkpoint)
    found.sort(key=lambda c: (c.seq, c.created_at))
    return found


def _identity(checkpoint: AuditCheckpoint) -> tuple:
    return (checkpoint.seq, checkpoint.head_hash, checkpoint.signature)


def _pruned_up_to(prunes: list[tuple[int, str]]) -> int | None:
    first = AuditEvent.objects.filter(seq__isnull=False).aggregate(first=Min("seq"))["first"]
    pruned = [seq for seq, _ in prunes if first is None or seq < first]
    return max(pruned, default=None)


def _contradictions(
    signed: list[AuditCheckpoint], prunes: list[tuple[int, str]]
) -> tuple[tuple[AuditCheckpoint, str] | None, list[AuditCheckpoint]]:
    """(the first checkpoint, by event, the chain contradicts, and why), and those it holds."""
    head = AuditChainHead.objects.filter(pk=1).first()
    sealed = AuditEvent.objects.filter(seq__isnull=False)
    if head is not None:
        sealed = sealed.filter(seq__lte=head.seq)
    bounds = sealed.aggregate(first=Min("seq"), last=Max("seq"))
    first, last = bounds["first"], bounds["last"]
    pruned_up_to = max((seq for seq, _ in prunes), default=0)
    hashes = _hashes_at({c.seq for c in signed} | ({first} if first else set()))
    before_first = None
    if first is not None:
        before_first = AuditEvent.objects.filter(seq=first).values_list("prev_hash", flat=True)[0]
    matched: list[AuditCheckpoint] = []
    for checkpoint in signed:
        stored = hashes.get(checkpoint.seq)
        if stored is None and first is not None and checkpoint.seq == first - 1:
            stored = before_first  # the link the first remaining event carries
        if stored == checkpoint.head_hash:
            matched.append(checkpoint)
            continue
        if stored is not None:
            why = (
                f"the {describe(checkpoint)} says its hash is {checkpoint.head_hash[:12]}..., "
                f"but the chain has {stored[:12]}... there: events up to #{checkpoint.seq} were "
                "changed, removed or inserted"
            )
        elif checkpoint.seq <= pruned_up_to and (first is None or checkpoint.seq < first):
            matched.append(checkpoint)  # pruned by the retention, under a signed checkpoint
            continue
        elif last is None or checkpoint.seq > last:
            end = f"the last event is #{last}" if last else "there are no events"
            why = (
                f"the {describe(checkpoint)} lies beyond the end of the chain ({end}): "
                "events were cut from the end"
            )
        else:
            why = f"the {describe(checkpoint)} signs an event that is missing: events were deleted"
        return (checkpoint, why), matched
    return None, matched


def _hashes_at(seqs: set[int]) -> dict[int, str]:
    ordered = sorted(seqs)
    found: dict[int, str] = {}
    for start in range(0, len(ordered), LOOKUP_BATCH):
        chunk = ordered[start : start + LOOKUP_BATCH]
        found.update(AuditEvent.objects.filter(seq__in=chunk).values_list("seq", "hash"))
    return found


def _last_attested_before(
    contradicted: AuditCheckpoint, matched: list[AuditCheckpoint]
) -> tuple[int | None, datetime | None]:
    """The newest event a checkpoint still vouches for, below the first contradicted one."""
    before = [c.seq for c in matched if c.seq < contradicted.seq]
    if not before:
        return None, None
    seq = max(before)
    at = AuditEvent.objects.filter(seq=seq).values_list("created_at", flat=True).first()
    return seq, at
