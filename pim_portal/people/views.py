"""Users and Groups (for User Administrators; read-only for directory readers)."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from assignments import authz
from assignments.authz import request_grants
from pim_portal import mfa
from pim_portal.models import Source
from pim_portal.params import positive_int
from pim_portal.people import queries, rules, services
from pim_portal.people.forms import MemberAddForm, ReasonForm, UserCreateForm, UserEditForm

PAGE_SIZE = 50
MEMBERS_PAGE_SIZE = 50


def _page(request, rows, size: int):
    return Paginator(rows, size).get_page(request.GET.get("page"))


def _user_for_viewer(request, pk):
    """A user the viewer may see (people viewers), else a 404, audited."""
    grants = request_grants(request)
    user_pk = positive_int(pk)
    user = (
        get_user_model().objects.select_related("manager").filter(pk=user_pk).first()
        if user_pk
        else None
    )
    if user is None or not rules.may_view_people(grants):
        authz.deny(request.user, what=f"view user {pk}", not_found=True)
    return user


def _group_for_viewer(request, pk):
    grants = request_grants(request)
    group_pk = positive_int(pk)
    group = (
        Group.objects.select_related("identity").filter(pk=group_pk).first() if group_pk else None
    )
    if group is None or not rules.may_view_people(grants):
        authz.deny(request.user, what=f"view group {pk}", not_found=True)
    return group


def _refusal(request, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


# --- Users ----------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
def user_list(request):
    grants = rules.require_view_people(request.user, request_grants(request))
    q = queries.search_term(request.GET.get("q"))
    source = request.GET.get("source", "")
    status = request.GET.get("status", "")
    page = _page(request, queries.users_listed(q=q, source=source, status=status), PAGE_SIZE)
    return render(
        request,
        "people/user_list.html",
        {
            "page_obj": page,
            "users": page.object_list,
            "q": q,
            "source": source if source in queries.SOURCE_FILTERS else "",
            "status": status if status in queries.STATUS_FILTERS else "",
            "sources": Source.choices,
            "can_manage": grants.can_manage_users(),
            "section": "users",
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
def user_create(request):
    rules.require_manage_users(request.user, request_grants(request), what="create a user")
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.user_create(request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # Rendered, not redirected: the one-time password is shown this once, kept nowhere.
            return render(
                request,
                "people/user_created.html",
                {
                    "created": created.user,
                    "one_time_password": created.one_time_password,
                    "section": "users",
                },
            )
    return render(request, "people/user_create.html", {"form": form, "section": "users"})


@require_http_methods(["GET", "HEAD"])
def user_detail(request, pk: int):
    user = _user_for_viewer(request, pk)
    grants = request_grants(request)
    protected = rules.is_protected(user)
    may_change = grants.can_manage_users() and (not protected or grants.can_manage_directory())
    itself = user.pk == request.user.pk
    owned = rules.provider_owned_fields(user)
    return render(
        request,
        "people/user_detail.html",
        {
            "person": user,
            "where_to_change": rules.WHERE_TO_CHANGE.get(user.source, ""),
            "groups": list(queries.user_groups(user)),
            "assignments": list(queries.user_assignments(user, grants)),
            "assignment_count": queries.user_assignment_count(user),
            "devices": list(mfa.confirmed_devices(user)),
            "protected": protected,
            "may_edit": may_change,
            "may_deactivate": may_change and not itself and "is_active" not in owned,
            "may_reset_mfa": may_change and not itself,
            "section": "users",
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
def user_edit(request, pk: int):
    user = _user_for_viewer(request, pk)
    rules.require_change_user(
        request.user, user, request_grants(request), what=f"change the user {user.username!r}"
    )
    form = UserEditForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(request.user, user, changes=form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{user} saved.")
            return redirect("people:user_detail", user.pk)
    return render(
        request,
        "people/user_edit.html",
        {
            "form": form,
            "person": user,
            "where_to_change": rules.WHERE_TO_CHANGE.get(user.source, ""),
            "section": "users",
        },
    )


def _user_action(
    request, pk, *, verb: str, template: str, submit: str, danger: bool, act, done, reason=True
):
    """A confirmation page and its POST; the rules are checked before either is shown."""
    user = _user_for_viewer(request, pk)
    what = f"{verb} the user {user.username!r}"
    rules.require_not_self(request.user, user, what=what)
    rules.require_change_user(request.user, user, request_grants(request), what=what)
    data = request.POST if request.method == "POST" else None  # a reason is optional
    form = ReasonForm(data, submit=submit, danger=danger, with_reason=reason)
    if request.method == "POST" and form.is_valid():
        try:
            act(user, form.cleaned_data.get("reason", ""))
        except ValidationError as error:
            _refusal(request, error)
        else:
            messages.success(request, done.format(user=user))
        return redirect("people:user_detail", user.pk)
    return render(request, template, {"form": form, "person": user, "section": "users"})


@require_http_methods(["GET", "HEAD", "POST"])
def user_deactivate(request, pk: int):
    return _user_action(
        request,
        pk,
        verb="deactivate",
        template="people/user_deactivate.html",
        submit="Deactivate",
        danger=True,
        act=lambda user, reason: services.user_deactivate(request.user, user, reason=reason),
        done="{user} is deactivated: their access ended and they cannot sign in.",
    )


@require_http_methods(["GET", "HEAD", "POST"])
def user_reactivate(request, pk: int):
    return _user_action(
        request,
        pk,
        verb="reactivate",
        template="people/user_reactivate.html",
        submit="Reactivate",
        danger=False,
        act=lambda user, reason: services.user_reactivate(request.user, user, reason=reason),
        done="{user} is active again. Their ended assignments stay ended.",
    )


@require_http_methods(["GET", "HEAD", "POST"])
def user_mfa_reset(request, pk: int):
    return _user_action(
        request,
        pk,
        verb="reset the MFA of",
        template="people/user_mfa_reset.html",
        submit="Reset MFA",
        danger=True,
        act=lambda user, reason: services.user_mfa_reset(request.user, user),
        reason=False,
        done="The authenticators of {user} are removed; they add a new one at their next sign-in.",
    )


# --- Groups ---------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
def group_list(request):
    rules.require_view_people(request.user, request_grants(request))
    q = queries.search_term(request.GET.get("q"))
    source = request.GET.get("source", "")
    page = _page(request, queries.groups_listed(q=q, source=source), PAGE_SIZE)
    return render(
        request,
        "people/group_list.html",
        {
            "page_obj": page,
            "groups": page.object_list,
            "q": q,
            "source": source if source in queries.SOURCE_FILTERS else "",
            "sources": Source.choices,
            "section": "groups",
        },
    )


def _may_change_members(grants, group, role_assignable: bool) -> bool:
    if rules.is_provider_group(group):
        return False
    if role_assignable:
        return grants.can_manage_directory()
    return grants.can_manage_users()


@require_http_methods(["GET", "HEAD", "POST"])
def group_detail(request, pk: int):
    """The group and its members; adding a member is a POST here."""
    group = _group_for_viewer(request, pk)
    grants = request_grants(request)
    if request.method == "POST":  # the rules first, whatever the form holds
        rules.require_change_membership(request.user, group, [], grants)
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member = form.cleaned_data["member"]
        try:
            added = services.group_members_add(request.user, group, users=[member])
        except ValidationError as error:
            _refusal(request, error)
        else:
            if added:
                messages.success(request, f"{member} added to {group}.")
            else:
                messages.info(request, f"{member} is already a member of {group}.")
        return redirect("people:group_detail", group.pk)
    role_assignable = rules.is_role_assignable(group)
    q = queries.search_term(request.GET.get("q"))
    page = _page(request, queries.members_listed(group, q=q), MEMBERS_PAGE_SIZE)
    source = rules.group_source(group)
    return render(
        request,
        "people/group_detail.html",
        {
            "group": group,
            "group_source": source,
            "group_source_label": Source(source).label,
            "where_to_change": rules.GROUP_WHERE_TO_CHANGE.get(source, ""),
            "role_assignable": role_assignable,
            "may_change_members": _may_change_members(grants, group, role_assignable),
            "form": form,
            "page_obj": page,
            "members": page.object_list,
            "q": q,
            "section": "groups",
        },
    )


@require_POST
def group_member_remove(request, pk: int, user_pk: int):
    group = _group_for_viewer(request, pk)
    member = group.user_set.filter(pk=positive_int(user_pk)).first()
    if member is None:
        authz.deny(
            request.user, what=f"remove user {user_pk}, not a member, from {group}", not_found=True
        )
    try:
        services.group_member_remove(request.user, group, user=member)
    except ValidationError as error:
        _refusal(request, error)
    else:
        messages.success(request, f"{member} removed from {group}.")
    return redirect("people:group_detail", group.pk)
