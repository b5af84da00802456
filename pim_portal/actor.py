"""Who acts: a signed-in user, or the system acting for a stated reason.

Every service takes an `Actor` first and checks it once at its door. Tasks, access reviews and
connectors act as `Actor.system("scheduler")`, `Actor.system("access review #12")` and the
like, never as a borrowed user; the audit log names the system and its reason.
"""

from dataclasses import dataclass
from typing import Any

SYSTEM_NAME = "system"


@dataclass(frozen=True)
class Actor:
    """`user` is set for a person; `reason` is set for the system (and says why it acts)."""

    user: Any = None
    reason: str = ""

    def __post_init__(self):
        if self.user is None and not self.reason:
            raise ValueError("The system acts for a stated reason: Actor.system('scheduler').")
        if self.user is not None and self.reason:
            raise ValueError("An actor is a user or the system, not both.")

    @classmethod
    def of(cls, who: "Actor | Any") -> "Actor":
        """An Actor as it is, or the actor for a user."""
        if isinstance(who, Actor):
            return who
        if who is None:
            raise ValueError("Name who acts: a user, or Actor.system(reason).")
        return cls(user=who)

    @classmethod
    def system(cls, reason: str) -> "Actor":
        return cls(reason=reason)

    @property
    def is_system(self) -> bool:
        return self.user is None

    @property
    def pk(self) -> int | None:
        """The acting user's id (None for the system): what `created_by`-style columns take."""
        return None if self.user is None else self.user.pk

    @property
    def display_name(self) -> str:
        if self.user is None:
            return f"{SYSTEM_NAME} ({self.reason})"
        return str(self.user)

    def __str__(self) -> str:
        return self.display_name


def user_of(who) -> Any:
    """The user behind an actor (None for the system), for `created_by`-style columns."""
    if who is None:
        return None
    return who.user if isinstance(who, Actor) else who
