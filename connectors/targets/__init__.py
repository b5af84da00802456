"""The kinds of connector: each a module that registers a `Target` subclass (see base)."""

from connectors.targets import ldap, postgresql  # noqa: F401  (they register themselves)
from connectors.targets.base import (
    KINDS,
    Connection,
    Target,
    TargetError,
    TargetUnavailable,
    register,
)

__all__ = [
    "KINDS",
    "Connection",
    "Target",
    "TargetError",
    "TargetUnavailable",
    "register",
    "kind_choices",
    "kind",
]


def kind_choices() -> list[tuple[str, str]]:
    return sorted(((k, cls.label) for k, cls in KINDS.items()), key=lambda c: c[1])


def kind(name: str) -> type[Target]:
    try:
        return KINDS[name]
    except KeyError:
        raise TargetError(f"Unknown connector kind {name!r}") from None
