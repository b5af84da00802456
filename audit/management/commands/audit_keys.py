"""Make the Ed25519 key pair that signs the audit chain's checkpoints."""

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import key_id

PRIVATE_NAME = "audit-signing-key.pem"
PUBLIC_NAME = "audit-verify-key.pem"


class Command(BaseCommand):
    help = (
        "Make a key pair for signed audit checkpoints: DIR/audit-signing-key.pem (PKCS8, mode "
        "0600: AUDIT_SIGNING_KEY_FILE) and DIR/audit-verify-key.pem (AUDIT_VERIFY_KEY_FILE). "
        "Keep the private key off the database host."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, metavar="DIR", help="Where to write both.")
        parser.add_argument(
            "--show-env",
            action="store_true",
            help="Also print both keys as AUDIT_SIGNING_KEY / AUDIT_VERIFY_KEY values "
            "(base64 of the raw 32 bytes). The private one is a secret: mind your terminal.",
        )

    def handle(self, *args, out, show_env=False, **options):
        directory = Path(out)
        private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
        for path in (private_path, public_path):
            if path.exists():
                raise CommandError(f"{path} exists: not overwriting a key.")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        public = key.public_key()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_new(private_path, private_pem, 0o600)
        _write_new(public_path, public_pem, 0o644)
        self.stdout.write(self.style.SUCCESS(f"Key {key_id(public)} made."))
        self.stdout.write(f"AUDIT_SIGNING_KEY_FILE={private_path}")
        self.stdout.write(f"AUDIT_VERIFY_KEY_FILE={public_path}")
        if show_env:
            raw_private = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            raw_public = public.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.stdout.write(f"AUDIT_SIGNING_KEY={base64.b64encode(raw_private).decode()}")
            self.stdout.write(f"AUDIT_VERIFY_KEY={base64.b64encode(raw_public).decode()}")


def _write_new(path: Path, content: bytes, mode: int) -> None:
    """Create the file with its mode from the start (never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # whatever the umask took away from the public key
