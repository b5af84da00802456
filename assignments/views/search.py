"""Small JSON answers for the forms' scripts: principal search, role settings, activation.

The first two only for viewers who may manage some role assignments, as the forms that use
them; the activation answer and the scope search only about the viewer's own assignments.
"""

from django.db.models import Q
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from assignments import authz
from assignments.catalog import Perm
from assignments.forms.manage import manageable_roles, policy_summary, scopes_below
from assignments.forms.my import MAX_BULK, activation_items, chosen_scopes, parse_ids
from assignments.forms.principals import SEARCH_KINDS, principal_matches
from assignments.models import Assignment, RoleKind, RolePolicy, Scope
from assignments.queries import tree_order
from pim_portal import params


def _require_manager(request, what: str) -> authz.Grants:
    return authz.require_manage_anything(request.user, authz.request_grants(request), what=what)


@require_GET
def principal_search(request):
    """GET ?q=<letters>&kind=user|group|any: at most 20 matching users and groups."""
    _require_manager(request, "search users and groups")
    q = params.clean_text(request.GET.get("q"), max_length=100)
    kind = params.choice(request.GET.get("kind"), SEARCH_KINDS, "any")
    return JsonResponse(principal_matches(q, kind), safe=False)


def _no_settings(role_name: str) -> dict:
    return {"role": role_name, "directory": False, "needs_scope": False, "summary": []}


@require_GET
def role_settings(request):
    """GET ?role=<id>&scope=<id>: the effective settings of a role the viewer may assign."""
    grants = _require_manager(request, "read role settings")
    if not request.GET.get("role"):
        return JsonResponse(_no_settings(""))
    role_id = params.positive_int(request.GET.get("role"))
    role = manageable_roles(grants).filter(pk=role_id).first() if role_id else None
    if role is None:
        authz.deny(
            request.user, what="read the settings of a role it may not assign", not_found=True
        )
    scope = None
    if role.is_directory_role:
        scope = Scope.objects.root()
    else:
        scope_id = params.positive_int(request.GET.get("scope"))
        if scope_id:
            reach = scopes_below(grants.top_paths(Perm.MANAGE_RESOURCES))
            scope = reach.filter(pk=scope_id).first()
        if scope is None:
            return JsonResponse({**_no_settings(role.name), "needs_scope": True})
    policy = RolePolicy.objects.effective_for(role, scope)
    return JsonResponse(
        {
            "role": role.name,
            "directory": role.is_directory_role,
            "needs_scope": False,
            "summary": policy_summary(policy),
            "mfa_on_active": policy.require_mfa_on_active_assignment,
            "justification_on_active": policy.require_justification_on_active_assignment,
        }
    )


@require_GET
def activation_settings(request):
    """GET ?eligible=<id>&scope_<id>=<scope>: what the settings of the scopes chosen ask for.

    The activate form asks for a ticket or a code when any scope the user may pick needs it;
    this says whether the scopes actually chosen do, so the page can hide the others.
    """
    ids = parse_ids(request.GET.getlist("eligible"))[:MAX_BULK]
    needs = {"mfa": False, "ticket": False, "justification": False}
    items = activation_items(request.user, ids)
    chosen = chosen_scopes(items, request.GET)
    for item in items:
        scope = chosen.get(item.eligible.pk, item.eligible.scope)
        policy = item.policy
        if scope.pk != item.eligible.scope_id:
            policy = RolePolicy.objects.effective_for(item.eligible.role, scope)
        needs["mfa"] |= policy.require_mfa_on_activation
        needs["ticket"] |= policy.require_ticket_on_activation
        needs["justification"] |= policy.require_justification_on_activation
    return JsonResponse(needs)


MAX_SCOPES = 20  # scopes one search answers with; the picker asks again as one types


def own_resource_paths(user) -> list[str]:
    """The paths of the scopes where the user holds (or held) a resource role, outermost
    first, without those already below another: what My roles may be filtered at or below."""
    paths = sorted(
        set(
            Assignment.objects.for_user(user)
            .filter(role__kind=RoleKind.RESOURCE)
            .values_list("scope__path", flat=True)
        ),
        key=len,
    )
    tops: list[str] = []
    for path in paths:
        if not any(path.startswith(top) for top in tops):
            tops.append(path)
    return tops


@require_GET
def my_scope_search(request):
    """GET ?q=<letters>[&eligible=<id>]: at most 20 scopes, in tree order, matching by name or
    path, at or below the user's own eligible assignment (for the activate form), or at or
    below any scope where the user holds a resource role (for the My roles filter)."""
    user = request.user
    q = params.clean_text(request.GET.get("q"), max_length=100)
    if request.GET.get("eligible") is not None:
        eligible = authz.own_eligible(user, request.GET.get("eligible"))
        tops = [] if eligible.role.is_directory_role else [eligible.scope.path]
    else:
        tops = own_resource_paths(user)
    scopes = scopes_below(tops)
    if q:
        scopes = scopes.filter(Q(name__icontains=q) | Q(path__icontains=q))
    found = list(scopes.order_by(tree_order(), "pk")[: MAX_SCOPES + 1])
    results = [
        {"id": scope.pk, "label": str(scope), "path": scope.path} for scope in found[:MAX_SCOPES]
    ]
    return JsonResponse({"results": results, "more": len(found) > MAX_SCOPES})
