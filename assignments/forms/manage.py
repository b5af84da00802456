"""Forms of the administrator pages: add and change assignments, edit role settings.

Forms parse and check the shape of the input; the rules of the role settings live in
assignments.policy and are enforced by the services, whose messages the views show.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Div, Field, Fieldset, Layout, Row, Submit
from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from assignments.authz import Grants
from assignments.catalog import Perm
from assignments.forms.principals import PrincipalsField, principal_key
from assignments.models import (
    AssignmentKind,
    NotificationEvent,
    RecipientKind,
    Role,
    RoleKind,
    RolePolicy,
    Scope,
)
from pim_portal import mfa
from pim_portal.humanize import duration_words

PRINCIPAL_TEMPLATE = "assignments/partials/principal_field.html"
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
ACTIVATION_MIN_HOURS = Decimal("0.5")
ACTIVATION_MAX_HOURS = Decimal("24")
MIN_YEAR, MAX_YEAR = 1900, 9000


# Shared pieces ---------------------------------------------------------------------------


class LocalDateTimeInput(forms.DateTimeInput):
    """A browser date-and-time picker; Django reads the value in the viewer's time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_LOCAL)


class LocalDateTimeField(forms.DateTimeField):
    widget = LocalDateTimeInput

    def to_python(self, value):
        moment = super().to_python(value)
        # Beyond these years adding a duration or showing the date in another zone overflows.
        if moment is not None and not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValidationError(
                f"Enter a date between the years {MIN_YEAR} and {MAX_YEAR}.", code="invalid"
            )
        return moment


def default_end(policy: RolePolicy, kind: str, start: datetime | None) -> datetime | None:
    """The longest end the settings allow, or None where permanent assignments are allowed."""
    limit = policy.max_assignment_duration(kind)
    if limit is None:
        return None
    return (start or timezone.now()) + limit


def manageable_roles(grants: Grants):
    kinds = []
    if grants.can_manage_directory():
        kinds.append(RoleKind.DIRECTORY)
    if grants.has_anywhere(Perm.MANAGE_RESOURCES):
        kinds.append(RoleKind.RESOURCE)
    return Role.objects.filter(kind__in=kinds).order_by("kind", "name")


def scopes_below(paths: list[str]):
    """Every scope at or below one of the paths (none when there are no paths)."""
    if not paths:
        return Scope.objects.none()
    where = Q()
    for path in paths:
        where |= Q(path__startswith=path)
    return Scope.objects.filter(where)


def tree_sorted(scopes) -> list[Scope]:
    """Parents before children, siblings by path: the same order on every database."""
    return sorted(scopes, key=lambda scope: scope.path.split("/"))


def _helper(*fieldsets, submit: str | None, danger: bool = False) -> FormHelper:
    helper = FormHelper()
    helper.layout = Layout(*fieldsets)
    if submit:
        css = "btn-danger" if danger else "btn-primary"
        helper.add_input(Submit("submit", submit, css_class=css))
    return helper


# Add assignments -------------------------------------------------------------------------


class AssignmentAddForm(forms.Form):
    principals = PrincipalsField(
        label="Users and groups",
        help_text="Members of a group hold the role through the group.",
        error_messages={"required": "Choose at least one user or group."},
    )
    role = forms.ModelChoiceField(queryset=Role.objects.none(), label="Role")
    scope = forms.ModelChoiceField(
        queryset=Scope.objects.none(),
        required=False,
        label="Scope",
        empty_label="The directory (directory roles)",
        help_text="Where a resource role applies, and every scope below it. "
        "Directory roles always apply to the whole directory.",
    )
    kind = forms.ChoiceField(
        choices=AssignmentKind.choices,
        initial=AssignmentKind.ELIGIBLE,
        widget=forms.RadioSelect,
        label="Assignment type",
        help_text="Eligible members activate the role when they need it; active members hold it.",
    )
    permanent = forms.BooleanField(required=False, label="Permanent (no end)")
    start = LocalDateTimeField(
        required=False, label="Start", help_text="In your time zone. Blank: now."
    )
    end = LocalDateTimeField(
        required=False,
        label="End",
        help_text="In your time zone. Blank: the longest the role's settings allow.",
    )
    justification = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Justification"
    )
    ticket_number = forms.CharField(required=False, max_length=100, label="Ticket number")
    ticket_system = forms.CharField(required=False, max_length=100, label="Ticket system")
    mfa_code = forms.CharField(
        required=False,
        max_length=10,
        label="MFA code",
        help_text="Only when the role's settings require MFA on active assignment.",
        widget=forms.PasswordInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, grants: Grants, **kwargs):
        super().__init__(*args, **kwargs)
        self.grants = grants
        self.fields["role"].queryset = manageable_roles(grants)
        self.fields["role"].label_from_instance = lambda r: f"{r.name} ({r.get_kind_display()})"
        scopes = scopes_below(grants.top_paths(Perm.MANAGE_RESOURCES))
        self.fields["scope"].queryset = scopes
        self.fields["scope"].choices = [("", self.fields["scope"].empty_label)] + [
            (scope.pk, "\u2003" * scope.depth + str(scope)) for scope in tree_sorted(scopes)
        ]
        self.helper = _helper(
            Fieldset(
                "Members",
                Field("principals", template=PRINCIPAL_TEMPLATE),
            ),
            Fieldset("Role", "role", "scope"),
            Fieldset(
                "Setting",
                "kind",
                "permanent",
                Row(Column("start", css_class="col-md-6"), Column("end", css_class="col-md-6")),
            ),
            Fieldset("Why", "justification", "ticket_number", "ticket_system", "mfa_code"),
            submit="Assign",
        )

    def clean(self):
        data = super().clean()
        role, scope = data.get("role"), data.get("scope")
        kind = data.get("kind")
        if role is None or kind is None:
            return data
        if role.is_directory_role:
            scope = Scope.objects.root()
        elif scope is None:
            self.add_error("scope", f"Choose the scope where {role} applies.")
            return data
        data["scope"] = scope
        policy = RolePolicy.objects.effective_for(role, scope)
        data["policy"] = policy
        if data.get("permanent"):
            data["end"] = None
        elif data.get("end") is None:
            data["end"] = default_end(policy, kind, data.get("start"))
            if data["end"] is None:
                self.add_error("end", "Set an end, or tick Permanent.")
        data["mfa_verified"] = False
        needs_mfa = kind == AssignmentKind.ACTIVE and policy.require_mfa_on_active_assignment
        if needs_mfa and not self.errors:
            user = self.grants.user
            if not mfa.has_device(user):
                self.add_error(
                    "mfa_code",
                    "Active assignments of this role need an MFA code: set up your "
                    "authenticator app first (account menu, Authenticator app).",
                )
            elif not mfa.verify_code(user, data.get("mfa_code", "")):
                self.add_error("mfa_code", "That MFA code is not right, or was already used.")
            else:
                data["mfa_verified"] = True
        return data


# Update, extend, renew, remove -----------------------------------------------------------


class AssignmentUpdateForm(forms.Form):
    start = LocalDateTimeField(required=False, label="Start", help_text="In your time zone.")
    end = LocalDateTimeField(required=False, label="End", help_text="In your time zone.")
    permanent = forms.BooleanField(required=False, label="Permanent (no end)")
    justification = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Justification",
        help_text="Blank keeps the current justification.",
    )

    def __init__(self, *args, assignment, **kwargs):
        initial = {
            "start": assignment.start,
            "end": assignment.end,
            "permanent": assignment.end is None,
        }
        super().__init__(*args, initial=initial, **kwargs)
        if assignment.is_in_force():
            self.fields["start"].disabled = True
            self.fields["start"].help_text = "An assignment in force keeps its start."
        self.helper = _helper(
            Fieldset("Assignment", "start", "end", "permanent", "justification"), submit="Save"
        )

    def clean(self):
        data = super().clean()
        if data.get("permanent"):
            data["end"] = None
        elif data.get("end") is None and "end" not in self.errors:
            self.add_error("end", "Set an end, or tick Permanent.")
        return data


class AssignmentExtendForm(forms.Form):
    end = LocalDateTimeField(label="New end", help_text="In your time zone.")
    justification = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Justification"
    )

    def __init__(self, *args, assignment, policy: RolePolicy, **kwargs):
        initial = {"end": default_end(policy, assignment.kind, None) or assignment.end}
        super().__init__(*args, initial=initial, **kwargs)
        self.helper = _helper(Fieldset("Extend", "end", "justification"), submit="Extend")


class AssignmentRenewForm(forms.Form):
    start = LocalDateTimeField(required=False, label="Start", help_text="Blank: now.")
    end = LocalDateTimeField(
        required=False,
        label="End",
        help_text="In your time zone. Blank: the longest the role's settings allow.",
    )
    permanent = forms.BooleanField(required=False, label="Permanent (no end)")
    justification = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Justification"
    )

    def __init__(self, *args, assignment, policy: RolePolicy, **kwargs):
        self.assignment, self.policy = assignment, policy
        initial = {"end": default_end(policy, assignment.kind, None)}
        super().__init__(*args, initial=initial, **kwargs)
        self.helper = _helper(
            Fieldset("Renew", "start", "end", "permanent", "justification"), submit="Renew"
        )

    def clean(self):
        data = super().clean()
        if data.get("permanent"):
            data["end"] = None
        elif data.get("end") is None and "end" not in self.errors:
            data["end"] = default_end(self.policy, self.assignment.kind, data.get("start"))
            if data["end"] is None:
                self.add_error("end", "Set an end, or tick Permanent.")
        return data


class AssignmentRemoveForm(forms.Form):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Justification",
        error_messages={"required": "Say why the assignment is removed."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout(Fieldset("Remove", "justification"))
        self.helper.form_tag = False  # the template adds a confirming submit button


# Role settings ---------------------------------------------------------------------------

NOTIFICATION_PARTS = {
    "enabled": "Send",
    "default_recipients": "Default recipients",
    "additional": "Additional recipients",
    "critical_only": "Critical roles only",
}


def notification_field(event: str, recipient: str, part: str) -> str:
    event, recipient = getattr(event, "value", event), getattr(recipient, "value", recipient)
    return f"notify__{event}__{recipient}__{part}"


def _addresses(value: str) -> list[str]:
    addresses = [item.strip() for item in (value or "").replace(";", ",").split(",")]
    addresses = [item for item in addresses if item]
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(
            "Not valid e-mail addresses: %(bad)s. Separate addresses with commas.",
            params={"bad": ", ".join(bad)},
        )
    return list(dict.fromkeys(addresses))


# Settings whose form field is the RolePolicy field itself (the others are converted).
SAME_AS_POLICY = (
    "require_mfa_on_activation",
    "require_justification_on_activation",
    "require_ticket_on_activation",
    "require_approval",
    "approvals_required",
    "allow_permanent_eligible",
    "eligible_expire_after_days",
    "allow_permanent_active",
    "active_expire_after_days",
    "require_mfa_on_active_assignment",
    "require_justification_on_active_assignment",
)


class RolePolicyForm(forms.Form):
    activation_max_hours = forms.DecimalField(
        label="Activation maximum duration (hours)",
        max_digits=5,
        decimal_places=2,
        help_text="From 0.5 (30 minutes) to 24 hours.",
        widget=forms.NumberInput(attrs={"step": "0.5", "min": "0.5", "max": "24"}),
    )
    require_mfa_on_activation = forms.BooleanField(
        required=False, label="On activation, require MFA"
    )
    require_justification_on_activation = forms.BooleanField(
        required=False, label="Require justification on activation"
    )
    require_ticket_on_activation = forms.BooleanField(
        required=False, label="Require ticket information on activation"
    )
    require_approval = forms.BooleanField(required=False, label="Require approval to activate")
    approvers = PrincipalsField(
        required=False,
        label="Approvers",
        help_text="Users and groups who approve activation requests. For directory roles, "
        "Privileged Role and Global Administrators approve when none are named.",
    )
    approvals_required = forms.IntegerField(
        label="Approvals required", min_value=1, max_value=10, initial=1
    )
    approval_window_hours = forms.IntegerField(
        label="Approval window (hours)",
        min_value=1,
        max_value=720,
        help_text="A request not decided within this time lapses.",
    )
    allow_permanent_eligible = forms.BooleanField(
        required=False, label="Allow permanent eligible assignment"
    )
    eligible_expire_after_days = forms.IntegerField(
        label="Expire eligible assignments after (days)", min_value=1, max_value=3650
    )
    allow_permanent_active = forms.BooleanField(
        required=False, label="Allow permanent active assignment"
    )
    active_expire_after_days = forms.IntegerField(
        label="Expire active assignments after (days)", min_value=1, max_value=3650
    )
    require_mfa_on_active_assignment = forms.BooleanField(
        required=False, label="Require MFA on active assignment"
    )
    require_justification_on_active_assignment = forms.BooleanField(
        required=False, label="Require justification on active assignment"
    )

    def __init__(self, *args, policy: RolePolicy, approvers, read_only: bool, **kwargs):
        users, groups = approvers
        kwargs["initial"] = {
            **self.initial_from(policy, users, groups),
            **kwargs.get("initial", {}),
        }
        super().__init__(*args, **kwargs)
        grid = [self._notification_row(event) for event in NotificationEvent]
        if read_only:
            for field in self.fields.values():
                field.disabled = True
        self.helper = _helper(
            Fieldset(
                "Activation",
                "activation_max_hours",
                "require_mfa_on_activation",
                "require_justification_on_activation",
                "require_ticket_on_activation",
                "require_approval",
                Field("approvers", template=PRINCIPAL_TEMPLATE),
                "approvals_required",
                "approval_window_hours",
            ),
            Fieldset(
                "Assignment",
                "allow_permanent_eligible",
                "eligible_expire_after_days",
                "allow_permanent_active",
                "active_expire_after_days",
                "require_mfa_on_active_assignment",
                "require_justification_on_active_assignment",
            ),
            Fieldset("Notification", *grid),
            submit=None if read_only else "Save settings",
        )

    def _notification_row(self, event) -> Div:
        """The fields of one notification event, a cell per kind of recipient."""
        cells = []
        for recipient in RecipientKind:
            names = []
            for part, label in NOTIFICATION_PARTS.items():
                name = notification_field(event, recipient, part)
                if part == "additional":
                    field = forms.CharField(
                        required=False, label=label, help_text="Comma separated e-mail addresses."
                    )
                else:
                    field = forms.BooleanField(required=False, label=label)
                self.fields[name] = field
                names.append(name)
            cells.append(
                Div(
                    HTML(format_html("<h3 class='h6'>{}</h3>", recipient.label)),
                    *names,
                    css_class="col-md-4 border rounded p-2",
                )
            )
        return Div(
            HTML(format_html("<h3 class='h6 mt-3'>{}</h3>", event.label)),
            Div(*cells, css_class="row g-2"),
        )

    @staticmethod
    def initial_from(policy: RolePolicy, users, groups) -> dict:
        hours = (Decimal(policy.activation_max_duration.total_seconds()) / 3600).quantize(
            Decimal("0.1")
        )
        initial = {
            "activation_max_hours": int(hours) if hours == int(hours) else hours,
            "approval_window_hours": int(policy.approval_window.total_seconds() // 3600),
            "approvers": [principal_key(p) for p in [*users, *groups]],
        }
        for name in SAME_AS_POLICY:
            initial[name] = getattr(policy, name)
        for event in NotificationEvent:
            for recipient in RecipientKind:
                setting = policy.notification(event, recipient)
                for part in NOTIFICATION_PARTS:
                    value = setting.get(part)
                    if part == "additional":
                        value = ", ".join(value or [])
                    initial[notification_field(event, recipient, part)] = value
        return initial

    def clean_activation_max_hours(self):
        hours = self.cleaned_data["activation_max_hours"]
        if not ACTIVATION_MIN_HOURS <= hours <= ACTIVATION_MAX_HOURS:
            raise ValidationError(
                "The activation maximum duration must be between 30 minutes (0.5) and 24 hours."
            )
        if (hours * 2) % 1:
            raise ValidationError("Give the activation maximum duration in half hours.")
        return hours

    def clean(self):
        data = super().clean()
        for event in NotificationEvent:
            for recipient in RecipientKind:
                name = notification_field(event, recipient, "additional")
                if name in data:
                    try:
                        data[name] = _addresses(data[name])
                    except ValidationError as error:
                        self.add_error(name, error)
        return data

    def policy_values(self) -> dict:
        """The RolePolicy field values, as services.policy_update takes them."""
        data = self.cleaned_data
        values = {name: data[name] for name in SAME_AS_POLICY}
        values["activation_max_duration"] = timedelta(
            minutes=int(data["activation_max_hours"] * 60)
        )
        values["approval_window"] = timedelta(hours=data["approval_window_hours"])
        values["notifications"] = {
            event.value: {
                recipient.value: {
                    part: data[notification_field(event, recipient, part)]
                    for part in NOTIFICATION_PARTS
                }
                for recipient in RecipientKind
            }
            for event in NotificationEvent
        }
        return values

    def approver_principals(self) -> tuple[list, list[Group]]:
        chosen = self.cleaned_data.get("approvers") or []
        users = [p for p in chosen if not isinstance(p, Group)]
        groups = [p for p in chosen if isinstance(p, Group)]
        return users, groups


def policy_summary(policy: RolePolicy) -> list[tuple[str, str]]:
    """The effective settings in words, for the pages that show them read-only."""

    def yes(value: bool) -> str:
        return "Yes" if value else "No"

    return [
        ("Activation maximum duration", duration_words(policy.activation_max_duration)),
        ("MFA on activation", yes(policy.require_mfa_on_activation)),
        ("Justification on activation", yes(policy.require_justification_on_activation)),
        ("Ticket on activation", yes(policy.require_ticket_on_activation)),
        ("Approval to activate", yes(policy.require_approval)),
        (
            "Eligible assignments",
            "may be permanent"
            if policy.allow_permanent_eligible
            else f"at most {policy.eligible_expire_after_days} days",
        ),
        (
            "Active assignments",
            "may be permanent"
            if policy.allow_permanent_active
            else f"at most {policy.active_expire_after_days} days",
        ),
        ("MFA on active assignment", yes(policy.require_mfa_on_active_assignment)),
        (
            "Justification on active assignment",
            yes(policy.require_justification_on_active_assignment),
        ),
    ]
