"""Connector secrets are never stored: a connector names where to read its password.

`env:NAME` reads the environment variable NAME of the process (web and worker alike);
`file:/run/secrets/ldap` reads a file (a Docker or Kubernetes secret, trailing newline
dropped). A blank reference is no password (PostgreSQL with peer or certificate
authentication, say). The value is read when it is used, so rotating it needs no change here.
"""

import os
import re

from django.core.exceptions import ValidationError

from connectors.targets import TargetUnavailable

_ENV = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_FILE = re.compile(r"^file:(/.+)$")


def validate_reference(ref: str) -> None:
    """A form's check: the reference is blank, env:NAME or file:/absolute/path."""
    if ref and not (_ENV.match(ref) or _FILE.match(ref)):
        raise ValidationError(
            "Name where the password is, not the password: env:NAME for an environment "
            "variable, or file:/path/to/file for a file.",
            code="secret_reference",
        )


def resolve(ref: str) -> str:
    """The secret a reference names; TargetUnavailable (with the reference, never the value)
    when it cannot be read."""
    if not ref:
        return ""
    if match := _ENV.match(ref):
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            raise TargetUnavailable(
                f"The environment variable {name} (the connector's password) is not set in "
                "this process."
            )
        return value
    if match := _FILE.match(ref):
        path = match.group(1)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        except OSError as error:
            raise TargetUnavailable(
                f"The password file {path} cannot be read: {error.strerror}."
            ) from None
    raise TargetUnavailable(f"{ref!r} is not a secret reference (env:NAME or file:/path).")
