"""Scopes, roles, role settings, assignments and requests.

Whether an assignment is in force is a function of the clock (`start <= now < end`), never of
a status column: see DESIGN.md, the one rule of time.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from assignments import counts
from assignments.choices import (  # noqa: F401 (re-exported: the models' vocabulary)
    ALLOWED_CHILDREN,
    MINIMUM_DURATION,
    OPEN_STATUSES,
    PATH_SEGMENTS,
    ROOT_PATH,
    AssignmentKind,
    NotificationEvent,
    RecipientKind,
    RequestAction,
    RequestStatus,
    RoleKind,
    ScopeKind,
    ancestor_paths,
    scope_label,
)


class ScopeQuerySet(models.QuerySet):
    def root(self) -> "Scope":
        return self.get(path=ROOT_PATH)

    def at_or_below(self, scope: "Scope"):
        return self.filter(path__startswith=scope.path)

    def at_or_above(self, scope: "Scope"):
        return self.filter(path__in=ancestor_paths(scope.path))


class Scope(models.Model):
    """A node of the resource tree. A role held at a scope holds at every scope below it."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    kind = models.CharField(max_length=20, choices=ScopeKind.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=1000, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    objects = ScopeQuerySet.as_manager()

    class Meta:
        ordering = ["path"]
        indexes = [
            models.Index(
                fields=["path"], name="scope_path_prefix", opclasses=["varchar_pattern_ops"]
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=ScopeKind.ROOT, parent__isnull=True)
                | (~Q(kind=ScopeKind.ROOT) & Q(parent__isnull=False)),
                name="scope_only_root_has_no_parent",
            )
        ]

    def __str__(self) -> str:
        return scope_label(self.name, self.kind)

    def save(self, *args, **kwargs):
        self.path = self.build_path()
        self.depth = 0 if self.is_root else self.parent.depth + 1
        super().save(*args, **kwargs)

    @property
    def is_root(self) -> bool:
        return self.kind == ScopeKind.ROOT

    def build_path(self) -> str:
        if self.kind == ScopeKind.ROOT:
            return ROOT_PATH
        return f"{self.parent.path}{PATH_SEGMENTS[self.kind]}/{self.slug}/"

    def ancestor_paths(self) -> list[str]:
        return ancestor_paths(self.path)

    def ancestors(self):
        """This scope and every scope above it, root first."""
        return Scope.objects.at_or_above(self).order_by("depth")

    def is_at_or_below(self, other: "Scope") -> bool:
        return self.path.startswith(other.path)


class Role(models.Model):
    """A role definition and the portal permissions it grants where it is held."""

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=RoleKind.choices)
    permissions = models.JSONField(default=list, blank=True)
    is_builtin = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_directory_role(self) -> bool:
        return self.kind == RoleKind.DIRECTORY


def default_notifications() -> dict:
    """Every event × recipient kind: on, default recipients on, no extra addresses."""
    return {
        event.value: {
            kind.value: {
                "enabled": True,
                "default_recipients": True,
                "additional": [],
                "critical_only": False,
            }
            for kind in RecipientKind
        }
        for event in NotificationEvent
    }


class RolePolicyQuerySet(models.QuerySet):
    def effective_for(self, role: Role, scope: "Scope | None" = None) -> "RolePolicy":
        """The most specific settings along the scope's ancestry, else the role's own."""
        return self.effective_and_below(role, scope, below=False)[0]

    def effective_and_below(
        self, role: Role, scope: "Scope | None" = None, *, below: bool = True
    ) -> tuple["RolePolicy", list["RolePolicy"]]:
        """The scope's effective settings and (`below`) the overrides at or below it: one query.

        A resource role can be activated at a narrower scope, whose override may ask for more."""
        candidates = self.filter(role=role).select_related("scope", "role")
        if scope is not None and not role.is_directory_role:
            wanted = Q(scope__isnull=True) | Q(scope__path__in=ancestor_paths(scope.path))
            if below:
                wanted |= Q(scope__path__startswith=scope.path)
            candidates = candidates.filter(wanted)
        else:
            candidates = candidates.filter(scope__isnull=True)
        best, narrower = None, []
        for policy in candidates:
            if policy.scope_id is not None and policy.scope.path.startswith(scope.path):
                narrower.append(policy)
                if policy.scope_id != scope.pk:
                    continue  # strictly below: not this scope's own settings
            depth = -1 if policy.scope_id is None else policy.scope.depth
            if best is None or depth > best[0]:
                best = (depth, policy)
        # Unsaved defaults when nothing is stored: a role always has settings.
        return (RolePolicy(role=role) if best is None else best[1]), narrower


class RolePolicy(models.Model):
    """The settings of a role, optionally overridden at a scope (and every scope below it)."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="policies")
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.CASCADE, related_name="policies"
    )
    # Activation
    activation_max_duration = models.DurationField(default=timedelta(hours=8))
    require_mfa_on_activation = models.BooleanField(default=True)
    require_justification_on_activation = models.BooleanField(default=True)
    require_ticket_on_activation = models.BooleanField(default=False)
    require_approval = models.BooleanField(default=False)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    approval_window = models.DurationField(default=timedelta(hours=24))
    # Assignment
    allow_permanent_eligible = models.BooleanField(default=False)
    eligible_expire_after_days = models.PositiveIntegerField(default=365)
    allow_permanent_active = models.BooleanField(default=False)
    active_expire_after_days = models.PositiveIntegerField(default=180)
    require_mfa_on_active_assignment = models.BooleanField(default=False)
    require_justification_on_active_assignment = models.BooleanField(default=True)
    # Notification
    notifications = models.JSONField(default=default_notifications)

    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RolePolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "role policies"
        permissions = [("approve_rolepolicy", "Approve activation requests for this role")]
        constraints = [
            models.UniqueConstraint(
                fields=["role"], condition=Q(scope__isnull=True), name="one_policy_per_role"
            ),
            models.UniqueConstraint(
                fields=["role", "scope"],
                condition=Q(scope__isnull=False),
                name="one_policy_per_role_and_scope",
            ),
        ]

    def __str__(self) -> str:
        where = f" at {self.scope.path}" if self.scope_id else ""
        return f"Settings of {self.role}{where}"

    def max_assignment_duration(self, kind: str) -> timedelta | None:
        """None when permanent assignments of that kind are allowed."""
        if kind == AssignmentKind.ELIGIBLE:
            if self.allow_permanent_eligible:
                return None
            return timedelta(days=self.eligible_expire_after_days)
        if self.allow_permanent_active:
            return None
        return timedelta(days=self.active_expire_after_days)

    def allows_permanent(self, kind: str) -> bool:
        if kind == AssignmentKind.ELIGIBLE:
            return self.allow_permanent_eligible
        return self.allow_permanent_active

    def notification(self, event: str, recipient: str) -> dict:
        defaults = default_notifications()[event][recipient]
        return {**defaults, **(self.notifications or {}).get(event, {}).get(recipient, {})}


class RolePolicyUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(RolePolicy, on_delete=models.CASCADE)


class RolePolicyGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RolePolicy, on_delete=models.CASCADE)


class PrincipalMixin(models.Model):
    """A principal is a user or a group: exactly one of the two."""

    principal_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    principal_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def principal(self):
        return self.principal_user if self.principal_user_id else self.principal_group

    @property
    def principal_type(self) -> str:
        return "User" if self.principal_user_id else "Group"

    @property
    def principal_name(self) -> str:
        return str(self.principal)

    def set_principal(self, principal) -> None:
        if isinstance(principal, Group):
            self.principal_user, self.principal_group = None, principal
        else:
            self.principal_user, self.principal_group = principal, None


def _one_principal(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(Q(principal_user__isnull=False) & Q(principal_group__isnull=True))
        | (Q(principal_user__isnull=True) & Q(principal_group__isnull=False)),
        name=f"{prefix}_exactly_one_principal",
    )


@models.ForeignKey.register_lookup
class InListOf(models.Lookup):
    """`column IN (SELECT ...)` that PostgreSQL can answer from an index inside an OR.

    Under an OR, PostgreSQL runs `IN (subquery)` as a filter over every row (a sequential scan
    of 100,000 assignments for "held by the user or by one of their groups"); `= ANY(ARRAY(
    subquery))` is computed once, and both sides of the OR use their indexes."""

    lookup_name = "in_list_of"

    def get_prep_lookup(self):
        return self.rhs

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)  # a subquery: "(SELECT ...)"
        if not rhs.startswith("("):
            rhs = f"({rhs})"
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)


class AssignmentQuerySet(models.QuerySet):
    def in_force(self, at: datetime | None = None):
        """In force at `at` (now): start <= at < end, end NULL meaning permanent."""
        at = at or timezone.now()
        return self.filter(Q(end__isnull=True) | Q(end__gt=at), start__lte=at)

    def not_ended(self, at: datetime | None = None):
        """In force now or starting later. An assignment canceled before its start (its end
        set to its start) never is: it is neither listed nor counted, nor does it block."""
        at = at or timezone.now()
        return self.filter(Q(end__isnull=True) | (Q(end__gt=at) & Q(end__gt=F("start"))))

    def upcoming(self, at: datetime | None = None):
        return self.not_ended(at).filter(start__gt=at or timezone.now())

    def never_in_force(self):
        """Canceled or removed before they started (end == start)."""
        return self.filter(end=F("start"))

    def ended(self, at: datetime | None = None):
        return self.filter(end__lte=at or timezone.now())

    def eligible(self):
        return self.filter(kind=AssignmentKind.ELIGIBLE)

    def active(self):
        return self.filter(kind=AssignmentKind.ACTIVE)

    def for_user(self, user):
        """Held by the user directly or through any group the user belongs to."""
        groups = Group.objects.filter(user=user).values("pk")
        return self.filter(Q(principal_user=user) | Q(principal_group__in_list_of=groups))

    def at_or_above(self, scope: Scope):
        return self.filter(scope__path__in=ancestor_paths(scope.path))

    def at_or_below(self, scope: Scope):
        return self.filter(scope__path__startswith=scope.path)

    def with_related(self):
        return self.select_related(
            "principal_user", "principal_group", "role", "scope", "created_by", "activated_from"
        )

    def for_page(self):
        """`with_related()` for a page of rows, but its people: role and scope joined, the
        group and the eligibility fetched for the page's rows; the principal and who made it
        come from `assignments.queries.attach_people(rows, "principal_user", "created_by")`,
        in one query. PostgreSQL took longer to plan a join of seven tables (5 to 20 ms)
        than to read a page of them; each fetch is a lookup by primary keys."""
        return self.select_related("role", "scope").prefetch_related(
            "principal_group", "activated_from"
        )

    def restrict(self, grants, action: str = "view"):
        """Only assignments of roles the grants (assignments.authz.Grants) let one see, or
        manage: directory roles with the directory permission; resource roles held at or
        below a scope where the resource permission holds, or above it (inherited there)."""
        if grants.is_system:
            return self
        directory, tops = grants.visible_role_kinds_and_paths(action)
        allowed = Q(pk__in=[])
        if directory:
            allowed |= Q(role__kind=RoleKind.DIRECTORY)
        for path in tops:
            allowed |= Q(role__kind=RoleKind.RESOURCE) & (
                Q(scope__path__startswith=path) | Q(scope__path__in=ancestor_paths(path))
            )
        return self.filter(allowed)


class Assignment(PrincipalMixin):
    """A principal holds a role at a scope, eligible or active, from start until end."""

    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="assignments")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="assignments")
    kind = models.CharField(max_length=10, choices=AssignmentKind.choices)
    start = models.DateTimeField(db_index=True)
    end = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    justification = models.TextField(blank=True)
    ticket_number = models.CharField(max_length=100, blank=True)
    ticket_system = models.CharField(max_length=100, blank=True)
    activated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="activations"
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Bookkeeping of the side effects of time (tasks); never read for access decisions.
    start_processed_at = models.DateTimeField(null=True, blank=True)
    end_processed_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-start"]
        constraints = [
            _one_principal("assignment"),
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gte=models.F("start")),
                name="assignment_end_not_before_start",
            ),
        ]
        indexes = [
            models.Index(fields=["role", "kind"]),
            models.Index(fields=["scope", "kind"]),
            # A role's members, a page at a time from any depth (keyset on start or end).
            models.Index(fields=["role", "kind", "start", "id"], name="assignment_role_kind_start"),
            models.Index(fields=["role", "end", "id"], name="assignment_role_end"),
            # A role's tab counts at a scope and above, counted from the index alone.
            models.Index(
                fields=["role", "scope", "kind", "end", "start"],
                name="assignment_role_scope_counts",
            ),
            # The time engine's due work: small, since processed rows leave them.
            models.Index(
                fields=["start"],
                condition=Q(start_processed_at__isnull=True),
                name="assignment_start_due",
            ),
            models.Index(
                fields=["end"],
                condition=Q(end_processed_at__isnull=True, end__isnull=False),
                name="assignment_end_due",
            ),
            # Standing access (permanent, not activated: pim_portal.insights.standing_access),
            # counted and paged from this small index alone, on the dashboard's every load.
            models.Index(
                fields=["role", "id"],
                include=["start", "principal_user"],
                condition=Q(kind="active", end__isnull=True, activated_from__isnull=True),
                name="assignment_standing",
            ),
        ]

    def __str__(self) -> str:
        kind = self.get_kind_display().lower()
        return f"{self.principal_name}: {self.role} ({kind}) at {self.scope}"

    def save(self, *args, **kwargs):
        if self._state.adding and self.start_processed_at is None and self.start:
            now = timezone.now()
            if self.start <= now:
                # Begun as it was made (and audited so): no start for the time engine to record.
                self.start_processed_at = now
        super().save(*args, **kwargs)

    def is_in_force(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.start <= at and (self.end is None or at < self.end)

    def has_ended(self, at: datetime | None = None) -> bool:
        """Past its end, or canceled before it began (end == start): never again in force."""
        if self.end is None:
            return False
        return self.end <= (at or timezone.now()) or self.end <= self.start

    def is_upcoming(self, at: datetime | None = None) -> bool:
        return self.start > (at or timezone.now()) and not self.has_ended(at)

    @property
    def never_in_force(self) -> bool:
        return self.end is not None and self.end <= self.start

    @property
    def is_permanent(self) -> bool:
        return self.end is None

    def snapshot(self) -> dict:
        """What the audit log records of an assignment."""
        return {
            "principal": self.principal_name,
            "principal_type": self.principal_type,
            "role": self.role.name,
            "scope": self.scope.path,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "justification": self.justification,
            "ticket_number": self.ticket_number,
            "ticket_system": self.ticket_system,
        }


class AssignmentReminder(models.Model):
    """A reminder mail sent for an assignment's end: sent once per (end, days before)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="reminders")
    for_end = models.DateTimeField()
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "for_end", "days_before"], name="one_reminder_per_end"
            )
        ]

    def __str__(self) -> str:
        return f"{self.days_before}-day reminder for assignment {self.assignment_id}"


def _waiting(at: datetime) -> Q:
    """Pending approval and still inside the approval window at `at` (the rule of time)."""
    return Q(status=RequestStatus.PENDING_APPROVAL) & (
        Q(approval_deadline__isnull=True) | Q(approval_deadline__gt=at)
    )


class RoleRequestQuerySet(models.QuerySet):
    """A request's state is read from the clock like an assignment's: a pending request past
    its approval deadline is lapsed at that second, and a scheduled one whose start has come is
    in force, whether or not a job has recorded it yet."""

    # Writes that send no post_save still tell what keeps lists of requests (the inbox).
    def update(self, **kwargs):
        counts.REQUESTS.move_now_and_after_commit()
        return super().update(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        counts.REQUESTS.move_now_and_after_commit()
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, *args, **kwargs):
        counts.REQUESTS.move_now_and_after_commit()
        return super().bulk_update(objs, *args, **kwargs)

    def pending(self, at: datetime | None = None):
        """Waiting for approval and still decidable at `at` (now)."""
        return self.filter(_waiting(at or timezone.now()))

    def lapsed(self, at: datetime | None = None):
        """Pending approval on the row, but past the deadline: lapsed, awaiting bookkeeping."""
        return self.filter(
            status=RequestStatus.PENDING_APPROVAL, approval_deadline__lte=at or timezone.now()
        )

    def open(self, at: datetime | None = None):
        """Still to be decided, or decided and scheduled to start later."""
        at = at or timezone.now()
        return self.filter(_waiting(at) | Q(status=RequestStatus.SCHEDULED, start__gt=at))

    def with_status(self, status: str, at: datetime | None = None):
        """Requests whose status, read from the clock at `at`, is `status`."""
        at = at or timezone.now()
        due = Q(status=RequestStatus.SCHEDULED, start__lte=at)
        lapsed = Q(status=RequestStatus.PENDING_APPROVAL, approval_deadline__lte=at)
        if status == RequestStatus.PENDING_APPROVAL:
            return self.filter(_waiting(at))
        if status == RequestStatus.SCHEDULED:
            return self.filter(status=status).exclude(due)
        if status == RequestStatus.PROVISIONED:
            return self.filter(Q(status=status) | due)
        if status == RequestStatus.EXPIRED:
            return self.filter(Q(status=status) | lapsed)
        return self.filter(status=status)

    def about(self, user):
        """The requests whose principal is the user: what My requests lists."""
        return self.filter(principal_user=user)

    def with_related(self):
        return self.select_related(
            "principal_user",
            "principal_group",
            "role",
            "scope",
            "requested_by",
            "target_assignment",
            "result_assignment",
        )

    def for_page(self):
        """`with_related()` for a page of rows (see AssignmentQuerySet.for_page)."""
        return self.select_related("role", "scope").prefetch_related(
            "principal_user",
            "principal_group",
            "requested_by",
            "target_assignment",
            "result_assignment",
        )


class RoleRequest(PrincipalMixin):
    """Every change to assignments is a request, with a Graph-style action and status."""

    action = models.CharField(max_length=20, choices=RequestAction.choices)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, db_index=True)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="requests")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=10, choices=AssignmentKind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    justification = models.TextField(blank=True)
    ticket_number = models.CharField(max_length=100, blank=True)
    ticket_system = models.CharField(max_length=100, blank=True)
    target_assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    result_assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approvals_required = models.PositiveSmallIntegerField(default=0)
    approval_deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_note = models.TextField(blank=True)

    objects = RoleRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            _one_principal("rolerequest"),
            models.UniqueConstraint(
                fields=["principal_user", "role", "scope", "kind"],
                condition=Q(status="pending_approval", principal_user__isnull=False),
                name="one_pending_request_per_user_role_scope",
            ),
            models.UniqueConstraint(
                fields=["principal_group", "role", "scope", "kind"],
                condition=Q(status="pending_approval", principal_group__isnull=False),
                name="one_pending_request_per_group_role_scope",
            ),
        ]
        indexes = [
            # The approval deadlines still to lapse (the time engine's due work).
            models.Index(
                fields=["approval_deadline"],
                condition=Q(status="pending_approval"),
                name="request_deadline_due",
            ),
            # My requests: a user's requests, newest first, a page at a time.
            models.Index(
                fields=["principal_user", "created_at", "id"], name="request_principal_newest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.role} for {self.principal_name}"

    def status_at(self, at: datetime | None = None) -> str:
        """The status the clock gives at `at`: a pending request past its deadline has lapsed
        (expired), a scheduled one whose start has come is in force (provisioned)."""
        at = at or timezone.now()
        deadline, start = self.approval_deadline, self.start
        if self.status == RequestStatus.PENDING_APPROVAL and deadline and deadline <= at:
            return RequestStatus.EXPIRED
        if self.status == RequestStatus.SCHEDULED and start and start <= at:
            return RequestStatus.PROVISIONED
        return self.status

    @property
    def current_status(self) -> str:
        return self.status_at()

    def get_current_status_display(self) -> str:
        return RequestStatus(self.current_status).label

    @property
    def is_pending(self) -> bool:
        return self.current_status == RequestStatus.PENDING_APPROVAL

    @property
    def is_open(self) -> bool:
        return self.current_status in OPEN_STATUSES

    @property
    def is_self_service(self) -> bool:
        return self.action.startswith("self_")
