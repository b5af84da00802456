from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from assignments.models import Assignment
from audit import log as audit_log
from pim_portal import (
    jobs,
    signin_mfa,  # noqa: F401  (registers its `check --deploy` warning)
)
from pim_portal.authenticators import authenticators_reset
from pim_portal.emergency import may_set_emergency_access
from pim_portal.models import AccessToken, GroupIdentity, Source, User

MFA_RESET_MAIL_TASK = "pim_portal.people.services.mail_mfa_reset"


@admin.action(description="Reset MFA (remove authenticators)")
def reset_mfa(modeladmin, request, queryset):
    """For a user who lost their phone: every authenticator removed, each reset audited, and
    the user told by mail (as the Users page's "Reset MFA" does)."""
    for user in queryset:
        with transaction.atomic():
            removed = authenticators_reset(actor=request.user, user=user)
            if user.email:
                jobs.enqueue(MFA_RESET_MAIL_TASK, user.pk, str(request.user))
        modeladmin.message_user(request, f"{user}: {removed} authenticator(s) removed.")


# --- The audit of what the admin changes ------------------------------------------------------
# The admin is a way around the portal's services, so every change made here is audited with
# before and after. A password is only ever "changed", never its hash.

USER_FIELDS = [
    "username",
    "display_name",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "time_zone",
    "is_emergency_access",
]


def _permission_names(permissions) -> list[str]:
    pairs = permissions.values_list("content_type__app_label", "codename")
    return sorted(f"{app}.{codename}" for app, codename in pairs)


def user_snapshot(user) -> dict:
    """A user's fields, manager, groups and permissions; `_password` is compared, never kept."""
    return {
        **{name: getattr(user, name) for name in USER_FIELDS},
        "manager": user.manager.username if user.manager_id else None,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": _permission_names(user.user_permissions),
        "_password": user.password,
    }


def group_snapshot(group: Group) -> dict:
    return {
        "name": group.name,
        "permissions": _permission_names(group.permissions),
        "members": sorted(group.user_set.values_list("username", flat=True)),
    }


def changes(before: dict, after: dict, *, only_delta=("members",)) -> tuple[dict, dict]:
    """(before, after) of what changed; lists also as what was added and removed (and only
    that for `only_delta`, which can be long)."""
    old, new = {}, {}
    for name, value in after.items():
        was = before.get(name)
        if was == value:
            continue
        if name == "_password":
            new["password"] = "changed"
            continue
        if name not in only_delta:
            old[name], new[name] = was, value
        if isinstance(value, list):
            new[f"{name}_added"] = sorted(set(value) - set(was or []))
            new[f"{name}_removed"] = sorted(set(was or []) - set(value))
    return old, new


def created(snapshot: dict) -> dict:
    shown = {name: value for name, value in snapshot.items() if name != "_password"}
    if "_password" in snapshot:
        usable = bool(snapshot["_password"]) and not snapshot["_password"].startswith("!")
        shown["password"] = "set" if usable else "none (no password sign-in)"
    return shown


def _membership_words(after: dict, added: str, removed: str) -> str:
    words = []
    if after.get(added):
        words.append(f"added {', '.join(after[added])}")
    if after.get(removed):
        words.append(f"removed {', '.join(after[removed])}")
    return f" ({'; '.join(words)})" if words else ""


def _holding(objs, principal_field: str) -> list[str]:
    """Why a principal cannot be deleted here: its assignments not ended are removed in the
    portal (audited, and revoked downstream), and its past ones are history to keep."""
    problems = []
    for obj in objs:
        held = Assignment.objects.filter(**{principal_field: obj})
        live, total = held.not_ended().count(), held.count()
        if live:
            problems.append(
                f"{obj} holds {live} role assignment{'s' if live != 1 else ''} that "
                f"{'has' if live == 1 else 'have'} not ended: remove "
                f"{'it' if live == 1 else 'them'} in the portal first."
            )
        elif total:
            problems.append(
                f"{obj} keeps the history of {total} past role assignment"
                f"{'s' if total != 1 else ''}: deactivate it instead of deleting it."
            )
    return problems


def refused_deletion(deleted, counts, perms_needed, protected, problems: list[str]):
    """Django's delete confirmation, refusing with our reasons (they say more than the
    "no permission to delete assignments" that the read-only models would otherwise show)."""
    if problems:
        return deleted, counts, set(), [*problems, *protected]
    return deleted, counts, perms_needed, protected


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "email", "manager", "time_zone", "is_active"]
    list_filter = ["source", "is_active", "is_staff", "is_superuser", "is_emergency_access"]
    search_fields = ["username", "display_name", "email"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Portal", {"fields": ["display_name", "manager", "time_zone"]}),
        (
            "Where the account comes from",
            {"fields": ["source", "oidc_issuer", "oidc_subject", "external_id"]},
        ),
    ]
    autocomplete_fields = ["manager"]
    actions = [reset_mfa]

    # Who the identity provider says the account is: never changed here (a link to another
    # subject would hand the account to someone else, unaudited).
    identity_fields = ("source", "oidc_issuer", "oidc_subject", "external_id")
    # What single sign-on takes from the claims at every sign-in, for accounts it made.
    oidc_owned_fields = ("username", "email", "display_name", "first_name", "last_name")

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), *self.identity_fields]
        if obj is not None and obj.source == Source.OIDC:
            fields += self.oidc_owned_fields
        return fields

    def get_fieldsets(self, request, obj=None):
        """Only a Global Administrator in force (or a superuser) marks emergency access
        accounts: without the field in the form, nobody else can set it."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not may_set_emergency_access(request.user):
            return fieldsets
        return [*fieldsets, ("Emergency access", {"fields": ["is_emergency_access"]})]

    def save_model(self, request, obj, form, change):
        # Read before the form's values are saved; groups follow later, in save_related.
        form._pim_before = user_snapshot(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = User.objects.select_related("manager").get(pk=form.instance.pk)
        before, after = form._pim_before, user_snapshot(user)
        if before is None:
            audit_log.record(
                action="pim.user.created",
                actor=request.user,
                target=user,
                principal=user,
                after=created(after),
                message=f"{user} created in the Django admin.",
            )
            return
        old, new = changes(before, after)
        if not new:
            return
        fields = [name for name in new if not name.endswith(("_added", "_removed"))]
        audit_log.record(
            action="pim.user.changed",
            actor=request.user,
            target=user,
            principal=user,
            before=old,
            after=new,
            message=f"{user} changed in the Django admin: {', '.join(fields)}"
            + _membership_words(new, "groups_added", "groups_removed")
            + ".",
        )

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            user = self.get_object(request, unquote(id))
            response = super().user_change_password(request, id, form_url)
            if user is not None and request.method == "POST":
                now = User.objects.get(pk=user.pk)
                if now.password != user.password:
                    usable = now.has_usable_password()
                    audit_log.record(
                        action="pim.user.password_changed",
                        actor=request.user,
                        target=now,
                        principal=now,
                        after={"password": "changed" if usable else "password sign-in disabled"},
                        message=f"{now}'s password "
                        + ("changed" if usable else "removed (password sign-in disabled)")
                        + " in the Django admin.",
                    )
        return response

    def get_deleted_objects(self, objs, request):
        answer = super().get_deleted_objects(objs, request)
        return refused_deletion(*answer, _holding(objs, "principal_user"))

    def _record_deleted(self, request, user) -> None:
        history = Assignment.objects.filter(principal_user=user).count()
        audit_log.record(
            action="pim.user.deleted",
            actor=request.user,
            target=user,
            principal=user,
            before=created(user_snapshot(user)),
            message=f"{user} deleted in the Django admin, with {history} past assignments.",
        )

    def delete_model(self, request, obj):
        self._record_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                self._record_deleted(request, user)
            super().delete_queryset(request, queryset)


class GroupAdminForm(forms.ModelForm):
    """A group's members on the group's own page, picked by searching (there may be many)."""

    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.all(),
        required=False,
        # The autocomplete view lists users for any user-valued field; manager is one.
        widget=AutocompleteSelectMultiple(User._meta.get_field("manager"), admin.site),
    )

    class Meta:
        model = Group
        fields = ["name", "permissions", "members"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = list(
                self.instance.user_set.values_list("pk", flat=True)
            )


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin):
    form = GroupAdminForm

    def save_model(self, request, obj, form, change):
        form._pim_before = group_snapshot(Group.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        group = form.instance
        # set() sends m2m_changed: members who leave lose the activations the group gave.
        group.user_set.set(form.cleaned_data["members"])
        before, after = form._pim_before, group_snapshot(group)
        if before is None:
            old, new = None, {**changes({}, after)[1], "name": group.name}
            action, verb = "pim.group.created", "created"
        else:
            old, new = changes(before, after)
            action, verb = "pim.group.changed", "changed"
            if not new:
                return
        audit_log.record(
            action=action,
            actor=request.user,
            target=group,
            principal=group,
            before=old,
            after=new,
            message=f"Group {group} {verb} in the Django admin"
            + _membership_words(new, "members_added", "members_removed")
            + ".",
        )

    def get_deleted_objects(self, objs, request):
        answer = super().get_deleted_objects(objs, request)
        return refused_deletion(*answer, _holding(objs, "principal_group"))

    def _delete(self, request, group: Group) -> None:
        audit_log.record(
            action="pim.group.deleted",
            actor=request.user,
            target=group,
            principal=group,
            before=group_snapshot(group),
            message=f"Group {group} deleted in the Django admin.",
        )
        # clear() sends m2m_changed (a cascade would not): members lose what the group gave.
        group.user_set.clear()

    def delete_model(self, request, obj):
        self._delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for group in queryset:
                self._delete(request, group)
            super().delete_queryset(request, queryset)


# Authenticators change on the account page (with a current code) or through the audited
# "Reset MFA" action above; the admin only shows them, so no MFA device changes unaudited.
admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class ReadOnlyTOTPDeviceAdmin(TOTPDeviceAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Single sign-on: where groups come from (pim_portal.sso) ----------------------------------
@admin.register(GroupIdentity)
class GroupIdentityAdmin(admin.ModelAdmin):
    """Shown, never changed here: single sign-on and SCIM match groups by these values."""

    list_display = ["group", "source", "claim_value", "external_id"]
    list_filter = ["source"]
    search_fields = ["group__name", "claim_value", "external_id"]
    list_select_related = ["group"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- SCIM provisioning: its tokens (pim_portal.scim) -------------------------------------------
@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Shown, never changed here: SCIM tokens are made and revoked on the Provisioning page,
    API tokens on each owner's API tokens page (audited there). Only a hash of each secret is
    kept, so no page can show one."""

    list_display = ["name", "kind", "owner", "prefix", "created_at", "expires_at", "revoked_at"]
    list_filter = ["kind"]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner", "created_by", "revoked_by"]
    exclude = ["secret_hash"]
    readonly_fields = [
        "name",
        "kind",
        "owner",
        "prefix",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
