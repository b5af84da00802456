"""Webhook signing secrets: made by the portal, kept encrypted, read back only to sign.

A secret is Standard Webhooks' `whsec_` and the base64 of 32 random bytes. The portal must read
it again to sign each delivery, so it cannot keep a hash: it keeps it encrypted with Fernet
(AES-128-CBC and HMAC-SHA256), under a key derived from SECRET_KEY with HKDF. A database dump
alone does not give the secrets away; SECRET_KEY_FALLBACKS still decrypt after SECRET_KEY is
rotated (the next write encrypts under the new key).
"""

import base64
import secrets as random

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Names what the derived key is for: another use of SECRET_KEY never gets the same key.
KEY_INFO = b"pim-portal webhook signing secrets v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt: SECRET_KEY changed without a fallback."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", []) or []
    return MultiFernet([_fernet(settings.SECRET_KEY), *(_fernet(k) for k in fallbacks)])


def encrypt(secret: str) -> str:
    return _keys().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "The signing secret cannot be read: SECRET_KEY changed since it was made. "
            "Rotate the secret."
        ) from None
