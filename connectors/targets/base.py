"""What a connector kind is: a small interface, one module per kind.

A kind (LDAP groups, PostgreSQL roles, ...) is a module in `connectors/targets/` that defines a
subclass of `Target` and registers it:

    @register
    class LdapGroups(Target):
        kind = "ldap"
        label = "LDAP group membership"
        options_form = LdapOptionsForm      # its connection options, validated

The portal decides *who* should be in a target object (the desired state, from the rule of
time); the kind only knows how to read and change membership there. Every method may raise
`TargetError` with a message an administrator can act on ("invalid credentials for
cn=admin,dc=example", "no group cn=x,ou=groups,dc=example"); anything else is a bug. Calls
must give up after the connector's `timeout` seconds, so that a target that never answers
cannot hold a worker.

`grant` and `revoke` are idempotent and read before they act: granting a member who is already
there, or revoking one who is gone, changes nothing and is not an error. So two workers, or a
worker that died after acting and before recording, never do a change twice.

An account is the name of a portal user in the target (a DN, a role name): `account_of(user)`
says it, or None when the user has no account there (the grant then fails, saying so), and
`username_of(account)` reads it back for the drift findings (None when it is nobody the portal
knows).
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms


class TargetError(Exception):
    """The target refused or could not be reached; the message is for an administrator."""


class TargetUnavailable(TargetError):
    """The target cannot be reached or refuses the portal's login (down, timing out, wrong
    credentials): every other call would fail the same way, so the rest of a batch for this
    connector fails at once instead of waiting for each call's timeout."""


@dataclass
class Connection:
    """What a target needs to connect: from the connector's row, with its secret resolved."""

    host: str
    port: int | None
    username: str
    secret: str
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float = 5.0


class Target:
    kind: ClassVar[str]
    label: ClassVar[str]
    # A Django form of the kind's options (base DNs, templates, database, TLS ...); its
    # cleaned_data is stored as the connector's `options`.
    options_form: ClassVar[type[forms.Form]]
    # What a mapping's target object is called on pages ("LDAP group DN", "PostgreSQL role").
    object_label: ClassVar[str] = "Target object"
    object_help: ClassVar[str] = ""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # A target is used as a context manager: connect on enter, close on exit.
    def __enter__(self) -> "Target":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Connect and authenticate; TargetError when it cannot."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the connection; never raises."""
        raise NotImplementedError

    def check_object(self, obj: str) -> None:
        """TargetError unless the target object exists (a mapping to a missing group)."""
        raise NotImplementedError

    def account_of(self, user) -> str | None:
        """The user's account in the target, or None when there is none."""
        raise NotImplementedError

    def username_of(self, account: str) -> str | None:
        """The portal username an account belongs to, or None when it is not one of ours."""
        raise NotImplementedError

    def account_key(self, account: str) -> str:
        """What two spellings of the same account have in common (an LDAP DN's case and
        escapes); accounts are compared by it. By default the account itself."""
        return account

    def members(self, obj: str) -> set[str]:
        """Every account in the target object now."""
        raise NotImplementedError

    def is_member(self, obj: str, account: str) -> bool:
        raise NotImplementedError

    def grant(self, obj: str, account: str) -> None:
        """Make the account a member of the object (nothing if it is one already)."""
        raise NotImplementedError

    def revoke(self, obj: str, account: str) -> None:
        """Take the account out of the object (nothing if it is not in it)."""
        raise NotImplementedError


KINDS: dict[str, type[Target]] = {}


def register(cls: type[Target]) -> type[Target]:
    KINDS[cls.kind] = cls
    return cls
