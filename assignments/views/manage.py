"""Pages for administrators: directory roles, resources, assignments and role settings.

Every view asks assignments.authz first (grants computed once per request), then reads through
querysets restricted to what the viewer may see, and changes things only through services.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Min, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from assignments import authz, extensions, queries, services
from assignments import counts as assignment_counts
from assignments.catalog import Perm
from assignments.forms.manage import (
    AssignmentAddForm,
    AssignmentExtendForm,
    AssignmentRemoveForm,
    AssignmentRenewForm,
    AssignmentUpdateForm,
    RolePolicyForm,
    policy_summary,
    scopes_below,
)
from assignments.models import (
    Assignment,
    AssignmentKind,
    Role,
    RoleKind,
    RolePolicy,
    Scope,
)
from assignments.views.export import membership_text
from assignments.views.keyset import keyset_page
from pim_portal.params import choice, clean_text, positive_int

PAGE_SIZE = 25
TREE_PAGE_SIZE = 50
TABS = [
    ("eligible", "Eligible assignments"),
    ("active", "Active assignments"),
    ("expired", "Expired assignments"),
]
GET_POST = require_http_methods(["GET", "POST"])


# Helpers ---------------------------------------------------------------------------------


def _posted(request):
    """The POST data to bind a form to (even when empty), or None for a GET."""
    return request.POST if request.method == "POST" else None


def _paginate(request, rows, per_page: int = PAGE_SIZE):
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def _in_force(prefix: str, now) -> Q:
    """In force at `now`, for an assignment reached through `prefix` (the rule of time)."""
    return Q(**{f"{prefix}start__lte": now}) & (
        Q(**{f"{prefix}end__isnull": True}) | Q(**{f"{prefix}end__gt": now})
    )


def _member_counts(rows: list, field: str, now, **only) -> None:
    """Set eligible_count, active_count and permanent_count (assignments in force) on each of
    `rows` (roles or scopes: `field` is "role" or "scope"), from one aggregate over the rows
    of this page alone, after paging: counted on role_id, so that PostgreSQL can count from
    the index of (role, scope, kind, end, start); kept while they cannot change (the next
    start or end among them, or a write: assignments.counts)."""
    ids = [r.pk for r in rows]
    in_force = Q(start__lte=now) & (Q(end__isnull=True) | Q(end__gt=now))
    eligible, active = Q(kind=AssignmentKind.ELIGIBLE), Q(kind=AssignmentKind.ACTIVE)

    def count():
        grouped = (
            Assignment.objects.filter(**{f"{field}_id__in": ids}, **only)
            .exclude(end__lte=now)
            .order_by()
            .values(f"{field}_id")
            .annotate(
                eligible_count=Count("role", filter=in_force & eligible),
                active_count=Count("role", filter=in_force & active),
                permanent_count=Count("role", filter=in_force & active & Q(end__isnull=True)),
                next_start=Min("start", filter=Q(start__gt=now)),
                next_end=Min("end"),
            )
        )
        found = {row.pop(f"{field}_id"): row for row in grouped}
        changes = [
            moment
            for row in found.values()
            for moment in (row.pop("next_start"), row.pop("next_end"))
            if moment is not None
        ]
        return {"rows": found, "next_change": min(changes, default=None)}

    key = f"{field}:{sorted(only.items())}:{'-'.join(map(str, ids))}"
    counts = assignment_counts.kept(key, now, count)["rows"]
    for row in rows:
        found = counts.get(row.pk, {})
        for name in ("eligible_count", "active_count", "permanent_count"):
            setattr(row, name, found.get(name, 0))


def _principal_filter(q: str) -> Q:
    return (
        Q(principal_user__display_name__icontains=q)
        | Q(principal_user__username__icontains=q)
        | Q(principal_user__email__icontains=q)
        | Q(principal_group__name__icontains=q)
    )


def _role_url(role: Role, scope: Scope | None) -> str:
    """The page of a role: directory roles have one, resource roles one per scope."""
    if role.is_directory_role or scope is None:
        return reverse("assignments:role_detail", args=[role.pk])
    return reverse("assignments:scope_role_detail", args=[scope.pk, role.pk])


def _settings_url(role: Role, scope: Scope | None) -> str:
    if role.is_directory_role or scope is None or scope.is_root:
        return reverse("assignments:policy_edit", args=[role.pk])
    return reverse("assignments:scope_policy_edit", args=[scope.pk, role.pk])


def _breadcrumb(scope: Scope, grants: authz.Grants) -> list[tuple[Scope, bool]]:
    """The scope's ancestors, root first, each with whether the viewer may open it."""
    return [(node, grants.can_view_scope(node)) for node in scope.ancestors()]


# Directory roles -------------------------------------------------------------------------


@require_GET
def directory_roles(request):
    authz.require_view_directory(request.user, authz.request_grants(request))
    now = timezone.now()
    q = clean_text(request.GET.get("q"))
    roles = Role.objects.filter(kind=RoleKind.DIRECTORY).order_by("name")
    if q:
        roles = roles.filter(name__icontains=q)
    page_obj = _paginate(request, roles)
    page_obj.object_list = list(page_obj.object_list)
    _member_counts(page_obj.object_list, "role", now)
    return render(
        request,
        "assignments/directory_roles.html",
        {"section": "directory", "page_obj": page_obj, "q": q},
    )


def _role_rows(role: Role, above: list[int], tab: str, q: str, now):
    """The role's assignments that apply at a scope (`above`: its id and its ancestors'):
    held there or inherited from above. Newest first, so that a page is a range of the index
    (role, kind, start) or (role, end), whatever its depth."""
    # No restrict(grants) here: the viewer may view the role at the scope (require_view_role),
    # and so every assignment of it held there or above; its joins would cost a row each.
    rows = Assignment.objects.filter(role=role, scope_id__in=above)
    if q:
        rows = rows.filter(_principal_filter(q))
    # Canceled before they started (end == start): never in force, neither listed nor counted.
    rows = rows.exclude(end=F("start"))

    # Counted on role_id (never NULL), a column of the index the filters use, so that
    # PostgreSQL counts from the index alone (assignment_role_scope_counts); kept while they
    # cannot change (assignments.counts), a search's counted afresh.
    def count():
        return rows.aggregate(
            eligible=Count("role", filter=Q(kind=AssignmentKind.ELIGIBLE) & ~Q(end__lte=now)),
            active=Count("role", filter=Q(kind=AssignmentKind.ACTIVE) & ~Q(end__lte=now)),
            expired=Count("role", filter=Q(end__lte=now)),
            next_change=Min("end", filter=Q(end__gt=now)),
        )

    key = f"role:{role.pk}:at:{'-'.join(map(str, above))}"
    counts = count() if q else assignment_counts.kept(key, now, count)
    if tab == "expired":
        return rows.ended(now), "end", counts
    return rows.not_ended(now).filter(kind=tab), "start", counts


def _role_page(request, role: Role, scope: Scope):
    grants = authz.require_view_role(request.user, role, scope, authz.request_grants(request))
    now = timezone.now()
    tab = choice(request.GET.get("tab"), dict(TABS), "eligible")
    q = clean_text(request.GET.get("q"))
    breadcrumb = None if role.is_directory_role else _breadcrumb(scope, grants)
    above = [node.pk for node, _ in breadcrumb] if breadcrumb else [scope.pk]
    rows, field_name, counts = _role_rows(role, above, tab, q, now)
    page_obj = keyset_page(
        rows.for_page(),
        request,
        field_name=field_name,
        per_page=PAGE_SIZE,
        count=counts[tab],
    )
    queries.attach_people(page_obj.object_list, "principal_user", "created_by")
    provisioning = extensions.provisioning_statuses(page_obj)
    for assignment in page_obj:
        assignment.membership = membership_text(assignment, scope)
        assignment.can_manage = grants.can_manage_role(role, assignment.scope)
        assignment.provisioning = provisioning.get(assignment.pk, ())
    can_manage = grants.can_manage_role(role, scope)
    if role.is_directory_role:
        export_url = reverse("assignments:role_export", args=[role.pk])
    else:
        export_url = reverse("assignments:scope_export", args=[scope.pk]) + f"?role={role.pk}"
    return render(
        request,
        "assignments/role_detail.html",
        {
            "section": "directory" if role.is_directory_role else "resources",
            "role": role,
            "scope": scope,
            "breadcrumb": breadcrumb,
            "tabs": [(key, label, counts[key]) for key, label in TABS],
            "tab": tab,
            "q": q,
            "page_obj": page_obj,
            "can_manage": can_manage,
            "add_url": reverse("assignments:assignment_add") + f"?role={role.pk}&scope={scope.pk}",
            "settings_url": _settings_url(role, scope),
            "export_url": export_url,
        },
    )


@require_GET
def role_detail(request, role_id: int):
    role = get_object_or_404(Role, pk=role_id)
    return _role_page(request, role, Scope.objects.root())


@require_GET
def scope_role_detail(request, scope_id: int, role_id: int):
    grants = authz.request_grants(request)
    scope = authz.scope_for_viewer(request.user, scope_id, grants)
    role = authz.role_for_viewer(request.user, role_id, scope, grants, kind=RoleKind.RESOURCE)
    return _role_page(request, role, scope)


# Resources -------------------------------------------------------------------------------


@require_GET
def resources(request):
    grants = authz.request_grants(request)
    tops = grants.top_paths(Perm.VIEW_RESOURCES)
    if not tops:
        authz.deny(request.user, what="view resources")
    q = clean_text(request.GET.get("q"))
    scopes = scopes_below(tops)
    if q:
        scopes = scopes.filter(name__icontains=q)
    page_obj = _paginate(request, scopes.order_by(queries.tree_order(), "pk"), TREE_PAGE_SIZE)
    page_scopes = list(page_obj)
    resource_roles = Role.objects.filter(kind=RoleKind.RESOURCE).values_list("pk", flat=True)
    # The resource roles' ids rather than a join to roles: the index answers alone.
    _member_counts(page_scopes, "scope", timezone.now(), role_id__in=list(resource_roles))
    top_depth = {path: len(path.strip("/").split("/")) // 2 for path in tops}
    for scope in page_scopes:
        top = next(path for path in tops if scope.path.startswith(path))
        scope.indent = range(scope.depth - top_depth[top])
    return render(
        request,
        "assignments/resources.html",
        {"section": "resources", "page_obj": page_obj, "q": q},
    )


@require_GET
def scope_detail(request, scope_id: int):
    grants = authz.request_grants(request)
    scope = authz.scope_for_viewer(request.user, scope_id, grants)
    now = timezone.now()
    breadcrumb = _breadcrumb(scope, grants)
    scopes_by_id = {node.pk: node for node, _ in breadcrumb}
    resource_roles = list(Role.objects.filter(kind=RoleKind.RESOURCE).order_by("name"))
    counts = (  # on role_id, from the index of (role, scope, kind, end, start) alone
        Assignment.objects.restrict(grants)
        .in_force(now)
        .filter(role_id__in=[role.pk for role in resource_roles])
        .at_or_above(scope)
        .values("role_id", "scope_id", "kind")
        .annotate(n=Count("role"))
        .order_by()
    )
    children = _paginate(request, scope.children.order_by("name", "pk"))
    children.object_list = list(children.object_list)
    _member_counts(children.object_list, "scope", now, role_id__in=[r.pk for r in resource_roles])
    per_role: dict[int, dict] = {}
    for row in counts:
        entry = per_role.setdefault(row["role_id"], {"direct": {}, "inherited": {}})
        if row["scope_id"] == scope.pk:
            bucket = entry["direct"]
        else:
            bucket = entry["inherited"].setdefault(row["scope_id"], {})
        bucket[row["kind"]] = bucket.get(row["kind"], 0) + row["n"]
    roles = []
    for role in resource_roles:
        entry = per_role.get(role.pk, {"direct": {}, "inherited": {}})
        inherited = sorted(
            (
                {
                    "scope": scopes_by_id[scope_pk],
                    "eligible": kinds.get(AssignmentKind.ELIGIBLE, 0),
                    "active": kinds.get(AssignmentKind.ACTIVE, 0),
                }
                for scope_pk, kinds in entry["inherited"].items()
            ),
            key=lambda item: item["scope"].depth,
        )
        role.direct_eligible = entry["direct"].get(AssignmentKind.ELIGIBLE, 0)
        role.direct_active = entry["direct"].get(AssignmentKind.ACTIVE, 0)
        role.inherited = inherited
        role.total = (
            role.direct_eligible
            + role.direct_active
            + sum(i["eligible"] + i["active"] for i in inherited)
        )
        roles.append(role)
    return render(
        request,
        "assignments/scope_detail.html",
        {
            "section": "resources",
            "scope": scope,
            "breadcrumb": breadcrumb,
            "roles": roles,
            "page_obj": children,
            "can_manage": grants.can_manage_scope(scope),
        },
    )


# Add and change assignments --------------------------------------------------------------


def _add_initial(request, form_roles, form_scopes) -> dict:
    """Preselect ?role= and ?scope= when the viewer may use them; ignore them otherwise."""
    initial: dict = {}
    role_id, scope_id = (
        positive_int(request.GET.get("role")),
        positive_int(request.GET.get("scope")),
    )
    role = form_roles.filter(pk=role_id).first() if role_id else None
    scope = form_scopes.filter(pk=scope_id).first() if scope_id else None
    if role is not None:
        initial["role"] = role.pk
    if scope is not None:
        initial["scope"] = scope.pk
    if role is not None and (role.is_directory_role or scope is not None):
        # Shown beside the form; the end stays blank so it defaults by the kind chosen.
        initial["policy"] = RolePolicy.objects.effective_for(role, scope)
    return initial


@GET_POST
def assignment_add(request):
    grants = authz.require_manage_anything(
        request.user, authz.request_grants(request), what="add role assignments"
    )
    form = AssignmentAddForm(_posted(request), grants=grants)
    policy = None
    if request.method == "GET":
        initial = _add_initial(request, form.fields["role"].queryset, form.fields["scope"].queryset)
        policy = initial.pop("policy", None)
        form.initial.update(initial)
    elif form.is_valid():
        data = form.cleaned_data
        try:
            services.assignment_create(
                actor=request.user,
                principals=data["principals"],
                role=data["role"],
                scope=data["scope"],
                kind=data["kind"],
                start=data["start"],
                end=data["end"],
                justification=data["justification"],
                ticket_number=data["ticket_number"],
                ticket_system=data["ticket_system"],
                mfa_verified=data["mfa_verified"],
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            count = len(data["principals"])
            kind = "eligible" if data["kind"] == AssignmentKind.ELIGIBLE else "active"
            messages.success(
                request,
                f"{count} principal{'' if count == 1 else 's'} assigned to {data['role']} "
                f"as {kind}.",
            )
            return redirect(_role_url(data["role"], data["scope"]))
    if form.is_bound:
        policy = form.cleaned_data.get("policy")
    return render(
        request,
        "assignments/assignment_add.html",
        {
            "section": "directory" if grants.can_manage_directory() else "resources",
            "form": form,
            "policy": policy,
            "policy_summary": policy_summary(policy) if policy else None,
        },
    )


def _assignment_for_manager(request, pk: int) -> Assignment:
    """The assignment if the viewer may manage it: 404 when they may not even see it."""
    return authz.assignment_for_manager(request.user, pk, authz.request_grants(request))


def _change_page(request, assignment: Assignment, form, *, title: str, intro: str = ""):
    return render(
        request,
        "assignments/assignment_change.html",
        {
            "section": "directory" if assignment.role.is_directory_role else "resources",
            "assignment": assignment,
            "form": form,
            "title": title,
            "intro": intro,
            "back_url": _role_url(assignment.role, assignment.scope),
        },
    )


def _done(request, assignment: Assignment, text: str):
    messages.success(request, text)
    return redirect(_role_url(assignment.role, assignment.scope))


def _change(request, assignment: Assignment, form, *, service, fields, done: str, **page):
    """Post the form's `fields` to the service; on success back to the role's members."""
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in fields}
        try:
            service(actor=request.user, assignment=assignment, **values)
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            return _done(request, assignment, f"Assignment of {assignment.principal} {done}.")
    return _change_page(request, assignment, form, **page)


@GET_POST
def assignment_update(request, pk: int):
    assignment = _assignment_for_manager(request, pk)
    return _change(
        request,
        assignment,
        AssignmentUpdateForm(_posted(request), assignment=assignment),
        service=services.assignment_update,
        fields=("start", "end", "justification"),
        done="updated",
        title="Update assignment",
    )


@GET_POST
def assignment_extend(request, pk: int):
    assignment = _assignment_for_manager(request, pk)
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    return _change(
        request,
        assignment,
        AssignmentExtendForm(_posted(request), assignment=assignment, policy=policy),
        service=services.assignment_extend,
        fields=("end", "justification"),
        done="extended",
        title="Extend assignment",
    )


@GET_POST
def assignment_renew(request, pk: int):
    assignment = _assignment_for_manager(request, pk)
    policy = RolePolicy.objects.effective_for(assignment.role, assignment.scope)
    return _change(
        request,
        assignment,
        AssignmentRenewForm(_posted(request), assignment=assignment, policy=policy),
        service=services.assignment_renew,
        fields=("start", "end", "justification"),
        done="renewed",
        title="Renew assignment",
        intro="" if assignment.has_ended() else "This assignment has not ended: extend it instead.",
    )


@GET_POST
def assignment_remove(request, pk: int):
    assignment = _assignment_for_manager(request, pk)
    form = AssignmentRemoveForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.assignment_remove(
                actor=request.user,
                assignment=assignment,
                justification=form.cleaned_data["justification"],
            )
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
            return redirect(_role_url(assignment.role, assignment.scope))
        return _done(request, assignment, f"Assignment of {assignment.principal} removed.")
    return render(
        request,
        "assignments/assignment_remove.html",
        {
            "section": "directory" if assignment.role.is_directory_role else "resources",
            "assignment": assignment,
            "form": form,
            "back_url": _role_url(assignment.role, assignment.scope),
        },
    )


# Role settings ---------------------------------------------------------------------------


def _policy_source(policy: RolePolicy, scope: Scope | None) -> str:
    if policy.scope_id is None:
        return "Role default"
    if scope is not None and policy.scope_id == scope.pk:
        return "Set at this scope"
    return f"Inherited from {policy.scope}"


def _policy_page(request, role: Role, scope: Scope | None):
    """Settings of a role (scope None) or of a resource role at a scope and below."""
    grants = authz.require_view_role(request.user, role, scope, authz.request_grants(request))
    can_manage = grants.can_manage_role(role, scope)
    if request.method == "POST":
        authz.require_manage_role(request.user, role, scope, grants)
    here = _settings_url(role, scope)
    if request.method == "POST" and "reset" in request.POST and scope is not None:
        services.policy_reset(actor=request.user, role=role, scope=scope)
        messages.success(request, f"Settings of {role} at {scope} now inherited from above.")
        return redirect(here)
    policy = RolePolicy.objects.effective_for(role, scope)
    form = RolePolicyForm(
        _posted(request),
        policy=policy,
        approvers=queries.policy_approvers(policy),
        read_only=not can_manage,
    )
    if request.method == "POST" and form.is_valid():
        users, groups = form.approver_principals()
        try:
            services.policy_update(
                actor=request.user,
                role=role,
                scope=scope,
                values=form.policy_values(),
                approver_users=users,
                approver_groups=groups,
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            where = f" at {scope}" if scope else ""
            messages.success(request, f"Settings of {role}{where} saved.")
            return redirect(here)
    return render(
        request,
        "assignments/policy_edit.html",
        {
            "section": "directory" if role.is_directory_role else "resources",
            "role": role,
            "scope": scope,
            "breadcrumb": _breadcrumb(scope, grants) if scope else None,
            "policy": policy,
            "source": _policy_source(policy, scope),
            "summary": policy_summary(policy),
            "form": form,
            "can_manage": can_manage,
            "can_reset": can_manage and scope is not None and policy.scope_id == scope.pk,
            "role_url": _role_url(role, scope or Scope.objects.root()),
        },
    )


@GET_POST
def policy_edit(request, role_id: int):
    role = get_object_or_404(Role, pk=role_id)
    return _policy_page(request, role, None)


@GET_POST
def scope_policy_edit(request, scope_id: int, role_id: int):
    grants = authz.request_grants(request)
    scope = authz.scope_for_viewer(request.user, scope_id, grants)
    role = authz.role_for_viewer(request.user, role_id, scope, grants, kind=RoleKind.RESOURCE)
    return _policy_page(request, role, None if scope.is_root else scope)
