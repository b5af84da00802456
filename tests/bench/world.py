"""The organization the benchmark measures, built with bulk inserts (minutes, not hours).

`World.grow(counts)` adds rows until each table reaches its count, so the smoke run can grow
the same database from half size to full size and compare query counts in between.
"""

import random
from dataclasses import dataclass, fields, replace
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex
from guardian.shortcuts import assign_perm

from assignments.catalog import PRIVILEGED_ROLE_ADMINISTRATOR
from assignments.models import (
    PATH_SEGMENTS,
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    Role,
    RolePolicy,
    RoleRequest,
    Scope,
    ScopeKind,
)
from assignments.queries import APPROVE_PERMISSION
from tests.bench import audit_chain

BATCH = 2000
BUSY_ROLE = "Security Reader"  # the directory role holding a third of all assignments
APPROVED_ROLE = "Contributor"  # needs approval by the named approver
ADMIN_APPROVED_ROLE = "Security Administrator"  # needs approval by the role's administrators
ACTIVATED_ROLE = "Reader"  # activated by the benchmark: no MFA, no approval
MFA_ROLE = "User Access Administrator"  # the defaults: a TOTP code and a reason, no approval
CLIENT_PREFIX = "bench-client-"  # the throughput run's users, one per client


@dataclass(frozen=True)
class Counts:
    users: int
    groups: int
    memberships: int
    scopes: int
    assignments: int
    requests: int
    pending: int
    audit_events: int
    approver_pending: int  # of `pending`: waiting for the named approver
    eligibilities: int  # of the eligible user, at many scopes

    def half(self) -> "Counts":
        return replace(self, **{f.name: getattr(self, f.name) // 2 for f in fields(self)})


SIZES = {
    "small": Counts(200, 20, 200, 100, 2_000, 400, 60, 10_000, 40, 30),
    "medium": Counts(2_000, 200, 2_000, 1_000, 20_000, 4_000, 300, 100_000, 200, 100),
    "large": Counts(10_000, 1_000, 10_000, 5_000, 100_000, 20_000, 1_500, 1_000_000, 1_000, 300),
}


class World:
    """The rows made so far, and the people the benchmark signs in as."""

    def __init__(self, *, activations: int, seed: int = 2026):
        self.random = random.Random(seed)
        self.now = timezone.now()
        self.User = get_user_model()
        self.roles = {role.name: role for role in Role.objects.all()}
        self.directory_roles = [r for r in self.roles.values() if r.is_directory_role]
        self.resource_roles = [r for r in self.roles.values() if not r.is_directory_role]
        self.levels: dict[str, list[Scope]] = {kind: [] for kind in PATH_SEGMENTS}
        self.root = Scope.objects.root()
        self.users: list = []
        self.groups: list[Group] = []
        self.memberships = 0
        self.assignments = 0
        self.requests = 0
        self.pending = 0
        self.approver_pending = 0
        self.eligibilities = 0
        self.pending_keys: set[tuple[int, int]] = set()  # (user, scope) of pending requests
        self.activations = activations  # eligible Reader assignments kept for the POST
        self.activation_pool: list[Assignment] = []
        self.activations_used = 0
        self.mfa_eligible: Assignment | None = None  # activated with a code, then deactivated
        self.bulk_batches = 0
        self._personas()

    # --- The people ------------------------------------------------------------------------

    def _personas(self) -> None:
        self.admin = self._user("bench-admin", "Bench Administrator")
        self.eligible = self._user("bench-eligible", "Bench Eligible")
        self.approver = self._user("bench-approver", "Bench Approver")
        self.plain = self._user("bench-plain", "Bench Plain")  # no role, no group: the yardstick
        for name in (PRIVILEGED_ROLE_ADMINISTRATOR, "Owner"):
            self._add([self._assignment(self.admin, self.roles[name], self.root, "active", None)])
        for name, changes in (
            (APPROVED_ROLE, {"require_approval": True}),
            (ADMIN_APPROVED_ROLE, {"require_approval": True}),
            (ACTIVATED_ROLE, {"require_mfa_on_activation": False, "require_approval": False}),
        ):
            RolePolicy.objects.filter(role=self.roles[name], scope__isnull=True).update(**changes)
        policy = RolePolicy.objects.get(role=self.roles[APPROVED_ROLE], scope__isnull=True)
        assign_perm(f"assignments.{APPROVE_PERMISSION}", self.approver, policy)
        # The eligible user has an authenticator, as an administrator of a real tenant does.
        self.totp_device = TOTPDevice.objects.create(
            user=self.eligible, name="Bench authenticator", key=random_hex(20), confirmed=True
        )

    def _user(self, username: str, name: str):
        return self.User.objects.create(
            username=username,
            display_name=name,
            email=f"{username}@bench.example",
            password=make_password(None),
        )

    # --- Growing ---------------------------------------------------------------------------

    def grow(self, counts: Counts) -> None:
        self._scopes(counts.scopes)
        self._users(counts.users)
        self._groups(counts.groups, counts.memberships)
        self._eligible_user(counts.eligibilities)
        self._pending(counts.pending, counts.approver_pending)
        self._activation_pool()
        self._mfa_eligible()
        self._assignments(counts.assignments)
        self._requests(counts.requests)
        audit_chain.grow(self, counts.audit_events)

    def _scopes(self, total: int) -> None:
        # The shape of a tenant: few management groups, many resources.
        shares = [
            (ScopeKind.MANAGEMENT_GROUP, max(2, total // 500)),
            (ScopeKind.SUBSCRIPTION, max(3, total // 50)),
            (ScopeKind.RESOURCE_GROUP, max(5, total // 5)),
        ]
        shares.append((ScopeKind.RESOURCE, total - 1 - sum(n for _, n in shares)))
        parents = [self.root]
        for kind, wanted in shares:
            made = self.levels[kind]
            rows = []
            for n in range(len(made), wanted):
                parent = parents[n % len(parents)]
                slug = f"{kind.replace('_', '-')}-{n:05d}"
                path = f"{parent.path}{PATH_SEGMENTS[kind]}/{slug}/"
                rows.append(
                    Scope(name=slug, slug=slug, kind=kind, parent=parent, path=path)
                )  # depth below
                rows[-1].depth = parent.depth + 1
            made.extend(Scope.objects.bulk_create(rows, batch_size=BATCH))
            parents = made
        self.busy_scope = self.levels[ScopeKind.SUBSCRIPTION][0]

    def _users(self, total: int) -> None:
        password = make_password(None)
        rows = []
        for n in range(len(self.users), total):
            manager = self.users[n % 50] if len(self.users) > 50 else None
            rows.append(
                self.User(
                    username=f"user{n:05d}",
                    display_name=f"User {n:05d}",
                    email=f"user{n:05d}@bench.example",
                    password=password,
                    manager=manager,
                )
            )
        self.users.extend(self.User.objects.bulk_create(rows, batch_size=BATCH))

    def _groups(self, total: int, memberships: int) -> None:
        rows = [Group(name=f"team-{n:04d}") for n in range(len(self.groups), total)]
        new = Group.objects.bulk_create(rows, batch_size=BATCH)
        if not self.groups:
            # The eligible user belongs to three teams, each eligible for a role.
            self.eligible.groups.add(*new[:3])
            for group in new[:3]:
                self._add([self._eligible(group, self.random.choice(self.directory_roles))])
        self.groups.extend(new)
        through = self.User.groups.through
        links = set()
        while len(links) < memberships - self.memberships:
            n = self.random.randrange(len(self.users))
            links.add((self.users[n].pk, self.groups[(n * 7 + len(links)) % len(self.groups)].pk))
        through.objects.bulk_create(
            [through(user_id=u, group_id=g) for u, g in links],
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        self.memberships = memberships

    def _eligible_user(self, total: int) -> None:
        """Eligible at many scopes, high in the tree too; a few active and expired activations
        of them (activated_from set, as an activation through the portal makes them)."""
        eligibles, shapes = [], []
        high = self.levels[ScopeKind.MANAGEMENT_GROUP] + self.levels[ScopeKind.SUBSCRIPTION]
        for n in range(self.eligibilities, total):
            if n % 5 == 0:
                role, scope = self.directory_roles[n % len(self.directory_roles)], self.root
            else:
                role = self.resource_roles[n % len(self.resource_roles)]
                scope = high[n % len(high)] if n % 3 == 0 else self._any_scope()
            permanent = n % 4 == 0
            eligibles.append(self._eligible(self.eligible, role, scope, permanent=permanent))
            shapes.append(n % 6)
        rows = []
        for eligible, shape in zip(self._add(eligibles), shapes, strict=True):
            role, scope = eligible.role, eligible.scope
            if shape == 0:
                rows.append(self._assignment(self.eligible, role, scope, "active", self._later()))
            elif shape == 3:
                start = self.now - timedelta(days=self.random.randint(1, 25))
                end = start + timedelta(hours=4)
                rows.append(self._assignment(self.eligible, role, scope, "active", end, start))
            else:
                continue
            rows[-1].activated_from = eligible
        self._add(rows)
        self.eligibilities = total

    def _activation_pool(self) -> None:
        """Eligible Reader assignments at resource groups: one per activation POST."""
        groups = self.levels[ScopeKind.RESOURCE_GROUP]
        rows = []
        for n in range(len(self.activation_pool), self.activations):
            scope = groups[n % len(groups)]
            rows.append(self._eligible(self.eligible, self.roles[ACTIVATED_ROLE], scope))
        self.activation_pool.extend(self._add(rows))

    def _mfa_eligible(self) -> None:
        """The eligible user's MFA role high in the tree: the activate form lists every scope
        below it. A management group where the user holds nothing else, so it can be activated."""
        if self.mfa_eligible is None:
            scope = self.levels[ScopeKind.MANAGEMENT_GROUP][0]
            (self.mfa_eligible,) = self._add(
                [self._eligible(self.eligible, self.roles[MFA_ROLE], scope)]
            )

    def bulk_batch(self, total: int) -> tuple[Scope, list[int]]:
        """`total` fresh requests for the named approver, alone at a new resource group so that
        the inbox's scope filter selects exactly them. Returns (scope, request ids)."""
        self.bulk_batches += 1
        parent = self.busy_scope
        slug = f"bulk-decide-{self.bulk_batches:02d}"
        kind = ScopeKind.RESOURCE_GROUP
        scope = Scope.objects.create(
            name=slug,
            slug=slug,
            kind=kind,
            parent=parent,
            path=f"{parent.path}{PATH_SEGMENTS[kind]}/{slug}/",
            depth=parent.depth + 1,
        )
        users = self.random.sample(self.users, min(total, len(self.users)))
        made = [self._pending_one(self.roles[APPROVED_ROLE], scope, user) for user in users]
        eligibles = self._add([eligible for eligible, _ in made])
        rows = []
        for eligible, (_, request) in zip(eligibles, made, strict=True):
            request.target_assignment = eligible
            rows.append(request)
        made_requests = RoleRequest.objects.bulk_create(rows, batch_size=BATCH)
        self.requests += len(rows)
        return scope, [request.pk for request in made_requests]

    def _pending(self, total: int, for_approver: int) -> None:
        """Self-activations waiting: most for the named approver, the rest for administrators."""
        rows, made = [], []
        while self.approver_pending < for_approver:
            self.approver_pending += 1
            made.append(self._pending_one(self.roles[APPROVED_ROLE], self._any_scope()))
        while self.pending < total - for_approver:
            self.pending += 1
            made.append(self._pending_one(self.roles[ADMIN_APPROVED_ROLE], self.root))
        eligibles = self._add([eligible for eligible, _ in made])
        for eligible, request in zip(eligibles, (r for _, r in made), strict=True):
            request.target_assignment = eligible
            rows.append(request)
        RoleRequest.objects.bulk_create(rows, batch_size=BATCH)
        self.requests += len(rows)

    def _pending_one(self, role: Role, scope: Scope, user=None) -> tuple[Assignment, RoleRequest]:
        while user is None or (user.pk, scope.pk) in self.pending_keys:
            user = self.random.choice(self.users)
        self.pending_keys.add((user.pk, scope.pk))
        eligible = self._eligible(user, role, scope)
        asked = self.now - timedelta(minutes=self.random.randint(1, 600))
        request = RoleRequest(
            principal_user=user,
            action=RequestAction.SELF_ACTIVATE,
            status=RequestStatus.PENDING_APPROVAL,
            role=role,
            scope=scope,
            kind=AssignmentKind.ACTIVE,
            requested_by=user,
            created_at=asked,
            duration=timedelta(hours=2),
            justification="Change window CHG-1234",
            approvals_required=1,
            approval_deadline=asked + timedelta(hours=24),
        )
        return eligible, request

    def _assignments(self, total: int) -> None:
        """Everyone else's: users and groups, eligible and active, across the tree."""
        rows = []
        for _ in range(self.assignments, total):
            draw = self.random.random()
            principal = (
                self.random.choice(self.groups) if draw < 0.1 else self.random.choice(self.users)
            )
            if draw < 0.35:
                role, scope = self.roles[BUSY_ROLE], self.root
            elif draw < 0.5:
                role, scope = self.random.choice(self.directory_roles), self.root
            else:
                role = self.random.choice(self.resource_roles)
                scope = self.busy_scope if draw > 0.93 else self._any_scope()
            kind = AssignmentKind.ELIGIBLE if self.random.random() < 0.55 else AssignmentKind.ACTIVE
            rows.append(self._assignment(principal, role, scope, kind, *self._shape()))
        self._add(rows)

    def _shape(self):
        """(end, start): ended, permanent, upcoming or time-bound."""
        shape, now = self.random.random(), self.now
        if shape < 0.15:
            start = now - timedelta(days=self.random.randint(30, 400))
            return start + timedelta(days=self.random.randint(1, 29)), start
        if shape < 0.35:
            return None, now - timedelta(days=self.random.randint(1, 900))
        if shape < 0.40:
            start = now + timedelta(days=self.random.randint(1, 30))
            return start + timedelta(days=90), start
        return self._later(), now - timedelta(days=self.random.randint(1, 300))

    def _later(self):
        return self.now + timedelta(days=self.random.randint(1, 365))

    def _requests(self, total: int) -> None:
        """Decided and finished requests of every kind; the eligible user's among them."""
        statuses = [
            (RequestStatus.PROVISIONED, 0.55),
            (RequestStatus.DENIED, 0.1),
            (RequestStatus.CANCELED, 0.1),
            (RequestStatus.EXPIRED, 0.15),
            (RequestStatus.REVOKED, 0.08),
            (RequestStatus.FAILED, 0.02),
        ]
        actions = [RequestAction.SELF_ACTIVATE, RequestAction.ADMIN_ASSIGN]
        actions += [RequestAction.ADMIN_REMOVE, RequestAction.SELF_DEACTIVATE]
        rows = []
        for n in range(self.requests, total):
            mine = n % 50 == 0
            user = self.eligible if mine else self.random.choice(self.users)
            action = actions[n % len(actions)]
            status = self.random.choices(*zip(*statuses, strict=True))[0]
            asked = self.now - timedelta(minutes=self.random.randint(600, 500_000))
            by = user if action.startswith("self_") else self.admin
            rows.append(
                RoleRequest(
                    principal_user=user,
                    action=action,
                    status=status,
                    role=self.random.choice(self.resource_roles),
                    scope=self._any_scope(),
                    kind=AssignmentKind.ACTIVE if n % 3 else AssignmentKind.ELIGIBLE,
                    requested_by=by,
                    created_at=asked,
                    start=asked,
                    end=asked + timedelta(hours=4),
                    duration=timedelta(hours=4),
                    justification=f"Ticket INC-{n:06d}",
                    completed_at=asked + timedelta(minutes=5),
                    completed_by=self.admin,
                )
            )
        RoleRequest.objects.bulk_create(rows, batch_size=BATCH)
        self.requests = total

    # --- Rows ------------------------------------------------------------------------------

    def _any_scope(self) -> Scope:
        draw = self.random.random()
        kind = (
            ScopeKind.RESOURCE
            if draw < 0.6
            else ScopeKind.RESOURCE_GROUP
            if draw < 0.9
            else ScopeKind.SUBSCRIPTION
        )
        return self.random.choice(self.levels[kind])

    def _eligible(self, principal, role, scope=None, *, permanent=False) -> Assignment:
        end = None if permanent else self._later()
        return self._assignment(principal, role, scope or self.root, "eligible", end)

    def _assignment(self, principal, role, scope, kind, end, start=None) -> Assignment:
        start = start or self.now - timedelta(days=self.random.randint(1, 200))
        assignment = Assignment(
            role=role,
            scope=scope,
            kind=kind,
            start=start,
            end=end,
            created_by=self.admin if hasattr(self, "admin") else None,
            justification="Bench",
        )
        assignment.set_principal(principal)
        return assignment

    def _add(self, rows: list[Assignment]) -> list[Assignment]:
        made = Assignment.objects.bulk_create(rows, batch_size=BATCH)
        self.assignments += len(made)
        return made
