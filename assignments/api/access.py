"""Effective access: does a principal hold a role at a scope now, through which assignment,
until when? The answers of `GET /api/v1/access` and `POST /api/v1/access/batch`.

The rule of time, as everywhere: an assignment gives the role while `start <= now < end` (end
NULL: permanent), read from the rows (`Assignment.objects.in_force(now)`), never from a status.
A role held at a scope holds at every scope below it, so the assignments that answer are those
at the scope asked about or above it; a user holds what is assigned to them and to the groups
they belong to (`for_user`); a deactivated account holds nothing (as `authz.grants_for` says).

Who may ask (`_may_ask`): a token's owner always about themselves; about anyone else only
where the owner may view the role (`Grants.can_view_role`: directory readers for directory
roles, a viewer at the scope or above for resource roles). Otherwise 403, audited. A refusal is
decided before the principal is looked up, so a token that may not ask cannot tell which
usernames exist.

One function answers a list of questions (one, or a batch) with a fixed number of queries,
whatever their number: roles, scopes, users, groups, memberships and assignments are each read
once for all of them.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from assignments import authz
from assignments.api import errors
from assignments.choices import ROOT_PATH, ancestor_paths
from assignments.models import Assignment, AssignmentKind, Role, Scope
from audit import log as audit_log
from pim_portal.actor import Actor
from pim_portal.params import positive_int

GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class Question:
    """One question, its values checked for shape (serializers.AccessQuestionSerializer)."""

    principal: str
    role: str
    scope: str = ROOT_PATH


@dataclass(frozen=True)
class PrincipalRef:
    id: int
    type: str  # "user" or "group"
    display_name: str
    account_enabled: bool | None = None  # users only

    @classmethod
    def of_user(cls, user) -> "PrincipalRef":
        return cls(user.pk, "user", str(user), user.is_active)

    @classmethod
    def of_group(cls, group) -> "PrincipalRef":
        return cls(group.pk, "group", group.name)


@dataclass(frozen=True)
class Holding:
    """An assignment that gives the role, and how it reaches the principal asked about."""

    assignment: Assignment
    principal: PrincipalRef  # the principal asked about, or the group it comes through
    member_type: str  # "direct" or "group"
    inherited: bool  # held at a scope above the one asked about


@dataclass
class Answer:
    principal: PrincipalRef
    role: Role
    scope: Scope
    checked_at: datetime
    assignments: list[Holding] = field(default_factory=list)
    eligible: bool = False

    @property
    def in_force(self) -> bool:
        return bool(self.assignments)

    @property
    def until(self) -> datetime | None:
        """The latest end among the assignments; None when one is permanent or none holds."""
        ends = [holding.assignment.end for holding in self.assignments]
        if not ends or None in ends:
            return None
        return max(ends)


# --- Reading the values -------------------------------------------------------------------


def scope_key(value: str) -> str | int:
    """A scope id, or a path with its slashes: '/subscriptions/s1' → '/subscriptions/s1/'."""
    if pk := positive_int(value):
        return pk
    path = value if value.endswith("/") else value + "/"
    return path


def _is_group(value: str) -> bool:
    return value[: len(GROUP_PREFIX)].lower() == GROUP_PREFIX


def _group_name(value: str) -> str:
    return value[len(GROUP_PREFIX) :].strip()


class _Lookup:
    """Every role, scope, user and group the questions name, each kind read in one query."""

    def __init__(self, questions: list[Question]):
        self.roles = self._roles({q.role for q in questions})
        self.scopes = self._scopes({scope_key(q.scope) for q in questions})
        self.users = self._users({q.principal for q in questions if not _is_group(q.principal)})
        self.groups = self._groups(
            {_group_name(q.principal) for q in questions if _is_group(q.principal)} - {""}
        )

    @staticmethod
    def _by_name(rows, value: str, attribute: str):
        """The row whose name is `value` exactly, else the one row matching it in any case."""
        exact = [row for row in rows if getattr(row, attribute) == value]
        if exact:
            return exact[0]
        folded = [row for row in rows if getattr(row, attribute).lower() == value.lower()]
        return folded[0] if len(folded) == 1 else None

    def _roles(self, keys: set[str]):
        ids = {pk for key in keys if (pk := positive_int(key))}
        names = {key.lower() for key in keys if not positive_int(key)}
        rows = (
            list(
                Role.objects.annotate(name_lower=Lower("name")).filter(
                    Q(pk__in=ids) | Q(name__in=keys) | Q(name_lower__in=names)
                )
            )
            if keys
            else []
        )
        self._role_rows = rows
        return {row.pk: row for row in rows}

    def role(self, key: str) -> Role | None:
        if pk := positive_int(key):
            return self.roles.get(pk)
        return self._by_name(self._role_rows, key, "name")

    def _scopes(self, keys: set):
        ids = {key for key in keys if isinstance(key, int)}
        paths = {key for key in keys if isinstance(key, str)}
        if not keys:
            return {}
        rows = Scope.objects.filter(Q(pk__in=ids) | Q(path__in=paths))
        found = {}
        for row in rows:
            found[row.pk] = found[row.path] = row
        return found

    def scope(self, key: str) -> Scope | None:
        return self.scopes.get(scope_key(key))

    def _users(self, keys: set[str]):
        if not keys:
            self._user_rows = []
            return {}
        ids = {pk for key in keys if (pk := positive_int(key))}
        folded = {key.lower() for key in keys if not positive_int(key)}
        rows = list(
            get_user_model()
            .objects.annotate(username_lower=Lower("username"), email_lower=Lower("email"))
            .filter(
                Q(pk__in=ids)
                | Q(username__in=keys)
                | Q(username_lower__in=folded)
                | Q(email_lower__in=folded)
            )
        )
        self._user_rows = rows
        return {row.pk: row for row in rows}

    def user(self, key: str):
        """By id (digits), else username (exact, then in any case), else e-mail (one user)."""
        if pk := positive_int(key):
            return self.users.get(pk)
        found = self._by_name(self._user_rows, key, "username")
        if found is not None:
            return found
        mailed = [row for row in self._user_rows if (row.email or "").lower() == key.lower()]
        return mailed[0] if len(mailed) == 1 else None

    def _groups(self, keys: set[str]):
        if not keys:
            self._group_rows = []
            return {}
        ids = {pk for key in keys if (pk := positive_int(key))}
        rows = list(
            Group.objects.annotate(name_lower=Lower("name")).filter(
                Q(pk__in=ids) | Q(name__in=keys) | Q(name_lower__in={key.lower() for key in keys})
            )
        )
        self._group_rows = rows
        return {row.pk: row for row in rows}

    def group(self, key: str):
        """By name (exact, then in any case), else by id (digits)."""
        found = self._by_name(self._group_rows, key, "name")
        if found is None and (pk := positive_int(key)):
            found = self.groups.get(pk)
        return found

    def principal(self, value: str):
        if _is_group(value):
            return self.group(_group_name(value))
        return self.user(value)


# --- Who may ask ----------------------------------------------------------------------------


def _may_ask(owner, grants: authz.Grants, principal, role: Role, scope: Scope) -> bool:
    if isinstance(principal, get_user_model()) and principal.pk == owner.pk:
        return True
    return grants.can_view_role(role, scope)


def _refusal_message(owner, role: Role, scope: Scope) -> str:
    needs = (
        "a role that may view directory roles"
        if role.is_directory_role
        else f"a role that may view resources at {scope.path} or above"
    )
    return (
        f"This token acts as {owner.get_username()}, who may ask only about themselves here: "
        f"asking about someone else's {role.name} at {scope.path} needs {needs}."
    )


# --- The answers --------------------------------------------------------------------------


def answer(
    owner, grants: authz.Grants, questions: list[Question], now: datetime | None = None
) -> list[Answer | errors.ApiError]:
    """The answer to each question, in order: an Answer, or the refusal (404, 403) for it.

    Refusals of access are audited (`pim.security.forbidden`, one INSERT for all of them, one
    event per distinct question refused)."""
    now = now or timezone.now()
    lookup = _Lookup(questions)
    results: list[Answer | errors.ApiError | None] = []
    asked: list[tuple[int, object, Role, Scope]] = []
    denials: dict[tuple, dict] = {}  # one event per distinct refused question of a batch
    for index, question in enumerate(questions):
        role = lookup.role(question.role)
        if role is None:
            results.append(errors.not_found(f"No role {question.role!r}.", "role"))
            continue
        scope = lookup.scope(question.scope)
        if scope is None:
            results.append(errors.not_found(f"No scope {question.scope!r}.", "scope"))
            continue
        principal = lookup.principal(question.principal)
        if not _may_ask(owner, grants, principal, role, scope):
            message = _refusal_message(owner, role, scope)
            results.append(errors.forbidden(message))
            denials[(question.principal, role.pk, scope.pk)] = {
                "action": "pim.security.forbidden",
                "actor": Actor.of(owner),
                "principal": question.principal[:200],
                "role": role.name,
                "scope": scope.path,
                "message": f"API: ask whether {question.principal[:100]} holds {role.name} "
                f"at {scope.path}",
            }
            continue
        if principal is None:
            if _is_group(question.principal):
                missing = f"No group {_group_name(question.principal)!r}."
            else:
                missing = f"No user {question.principal!r}."
            results.append(errors.not_found(missing, "principal"))
            continue
        results.append(None)
        asked.append((index, principal, role, scope))
    if denials:
        audit_log.record_many(denials.values())
    for (index, *_), found in zip(asked, _answers(asked, now), strict=True):
        results[index] = found
    return results


def _answers(asked: list[tuple[int, object, Role, Scope]], now: datetime) -> list[Answer]:
    """Every answer from one read of memberships and one of assignments."""
    if not asked:
        return []
    User = get_user_model()
    users = {p.pk: p for _, p, _, _ in asked if isinstance(p, User) and p.is_active}
    groups = {p.pk for _, p, _, _ in asked if isinstance(p, Group)}
    memberships: dict[int, set[int]] = defaultdict(set)
    if users:
        rows = User.groups.through.objects.filter(user_id__in=users).values_list(
            "user_id", "group_id"
        )
        for user_id, group_id in rows:
            memberships[user_id].add(group_id)
    every_group = groups.union(*memberships.values())
    paths = {path for _, _, _, scope in asked for path in ancestor_paths(scope.path)}
    holders = Q(principal_user_id__in=users) | Q(principal_group_id__in=every_group)
    rows = (
        Assignment.objects.in_force(now)
        .filter(holders, role_id__in={role.pk for _, _, role, _ in asked}, scope__path__in=paths)
        .select_related("scope", "principal_group")
        .order_by("start", "pk")
        if users or every_group
        else []
    )
    by_role: dict[int, list[Assignment]] = defaultdict(list)
    for row in rows:
        by_role[row.role_id].append(row)
    return [
        _answer(principal, role, scope, by_role[role.pk], memberships, now)
        for _, principal, role, scope in asked
    ]


def _answer(principal, role, scope, rows, memberships, now) -> Answer:
    is_group = isinstance(principal, Group)
    ref = PrincipalRef.of_group(principal) if is_group else PrincipalRef.of_user(principal)
    result = Answer(principal=ref, role=role, scope=scope, checked_at=now)
    if not is_group and not principal.is_active:
        return result  # a deactivated account holds nothing
    above = set(ancestor_paths(scope.path))
    groups = set() if is_group else memberships.get(principal.pk, set())
    for row in rows:
        if row.scope.path not in above or not row.is_in_force(now):
            continue
        if is_group:
            if row.principal_group_id != principal.pk:
                continue
            via, member_type = ref, "direct"
        elif row.principal_user_id == principal.pk:
            via, member_type = ref, "direct"
        elif row.principal_group_id in groups:
            via, member_type = PrincipalRef.of_group(row.principal_group), "group"
        else:
            continue
        if row.kind == AssignmentKind.ELIGIBLE:
            result.eligible = True
            continue
        result.assignments.append(
            Holding(
                assignment=row,
                principal=via,
                member_type=member_type,
                inherited=row.scope_id != scope.pk,
            )
        )
    return result
