"""Forms of the self-service pages: activate eligible roles, ask to extend or renew.

Forms parse the shape of the input; the rules of the role settings (durations, justification,
ticket, MFA) are enforced by assignments.services, whose messages name the rule broken.
"""

from dataclasses import dataclass
from datetime import timedelta

from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Fieldset, Layout
from django import forms
from django.urls import reverse

from assignments.models import Assignment, RolePolicy, Scope
from assignments.queries import eligible_assignments
from pim_portal.humanize import duration_words
from pim_portal.params import positive_int

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
MAX_BULK = 20  # eligible assignments activated with one form
MAX_ID = 2**63 - 1  # the largest primary key the database can hold (BigAutoField)


class LocalDateTimeInput(forms.DateTimeInput):
    """A browser date-and-time picker; Django reads the value in the viewer's time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_LOCAL)


@dataclass
class ActivationItem:
    """One eligible assignment on the activate form, with what its role's settings ask."""

    eligible: Assignment
    policy: RolePolicy
    requires_mfa: bool = False
    requires_justification: bool = False
    requires_ticket: bool = False
    # Resource roles may be narrowed to a scope below the eligible one; the form offers the
    # eligible scope and the one chosen, the others are searched for (search.my_scope_search).
    narrowable: bool = False

    @property
    def field_name(self) -> str:
        return f"scope_{self.eligible.pk}"

    @property
    def label(self) -> str:
        return label_for(self.eligible.role, self.eligible.scope)


def label_for(role, scope) -> str:
    """'Security Administrator' for a directory role, 'Owner at Production' for a resource."""
    return str(role) if role.is_directory_role else f"{role} at {scope.name}"


def parse_ids(values) -> list[int]:
    """The distinct integer ids in a list of form values, in order; junk is dropped."""
    ids: list[int] = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if not 0 < number <= MAX_ID:
            continue  # no row has it, and the database refuses to compare with it
        if number not in ids:
            ids.append(number)
    return ids


def activation_items(user, ids: list[int]) -> list[ActivationItem]:
    """The user's own eligible assignments among `ids`, each with its settings and scopes.

    A policy override below the eligible scope counts: if a narrower scope the user may pick
    needs MFA, the form asks for a code.
    """
    found = {a.pk: a for a in eligible_assignments(user).filter(pk__in=ids)}
    items = []
    for pk in ids:
        eligible = found.get(pk)
        if eligible is None:
            continue
        role, scope = eligible.role, eligible.scope
        policy, narrower = RolePolicy.objects.effective_and_below(role, scope)
        policies = [policy, *narrower]
        item = ActivationItem(
            eligible=eligible, policy=policy, narrowable=not role.is_directory_role
        )
        item.requires_mfa = any(p.require_mfa_on_activation for p in policies)
        item.requires_justification = any(p.require_justification_on_activation for p in policies)
        item.requires_ticket = any(p.require_ticket_on_activation for p in policies)
        items.append(item)
    return items


def chosen_scopes(items: list[ActivationItem], values: dict) -> dict[int, Scope]:
    """The narrower scopes named in `values` (field name -> id), one query for all items:
    eligible id -> the scope, kept only when it lies at or below that eligible scope."""
    wanted = {}
    for item in items:
        if not item.narrowable:
            continue
        pk = positive_int(values.get(item.field_name))
        if pk and pk != item.eligible.scope_id:
            wanted[item.eligible.pk] = pk
    if not wanted:
        return {}
    found = Scope.objects.in_bulk(set(wanted.values()))
    chosen = {}
    for item in items:
        scope = found.get(wanted.get(item.eligible.pk))
        if scope is not None and scope.is_at_or_below(item.eligible.scope):
            chosen[item.eligible.pk] = scope
    return chosen


def hours_to_duration(hours) -> timedelta:
    return timedelta(seconds=round(float(hours) * 3600))


def duration_to_hours(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g}"


def scope_label(scope: Scope, top: Scope) -> str:
    """Indented under the eligible scope, so the tree shows in a plain select."""
    return f"{'— ' * (scope.depth - top.depth)}{scope}"


class ActivateForm(forms.Form):
    """Activate one or several eligible assignments with one start, duration and reason."""

    start = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        label="Start",
        help_text="Leave empty to start now. At most 30 days ahead, in your time zone.",
    )
    duration_hours = forms.DecimalField(
        required=False,
        max_digits=8,
        decimal_places=2,
        label="Duration (hours)",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    justification = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Reason"
    )
    ticket_number = forms.CharField(required=False, max_length=100, label="Ticket number")
    ticket_system = forms.CharField(required=False, max_length=100, label="Ticket system")
    mfa_code = forms.CharField(
        required=False,
        max_length=8,
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
        help_text="The role's settings ask for a fresh code at every activation.",
    )

    def __init__(self, *args, items: list[ActivationItem], **kwargs):
        self.items = items
        maxima = [item.policy.activation_max_duration for item in items]
        self.default_duration = min(maxima) if maxima else None
        initial = kwargs.setdefault("initial", {})
        if self.default_duration:
            initial.setdefault("duration_hours", duration_to_hours(self.default_duration))
        super().__init__(*args, **kwargs)
        self.requires_mfa = any(item.requires_mfa for item in items)
        self.requires_justification = any(item.requires_justification for item in items)
        self.requires_ticket = any(item.requires_ticket for item in items)

        # Only the eligible scope and the one posted are offered (checked at or below it);
        # any other id is not a valid choice. The page's script searches the scopes below.
        self.chosen = chosen_scopes(items, self.data) if self.is_bound else {}
        search_url = reverse("assignments:my_scope_search")
        scope_fields = []
        for item in items:
            if item.narrowable:
                offered = [item.eligible.scope]
                if item.eligible.pk in self.chosen:
                    offered.append(self.chosen[item.eligible.pk])
                self.fields[item.field_name] = forms.TypedChoiceField(
                    choices=[
                        (scope.pk, scope_label(scope, item.eligible.scope)) for scope in offered
                    ],
                    coerce=int,
                    empty_value=None,
                    required=False,  # not given: the eligible scope itself
                    initial=item.eligible.scope.pk,
                    label=f"Scope for {item.eligible.role}",
                    help_text=f"Your eligible scope ({item.eligible.scope.name}) or narrower: "
                    "search for a scope below it.",
                    widget=forms.Select(
                        attrs={
                            "data-scope-search-url": f"{search_url}?eligible={item.eligible.pk}",
                            "data-scope-search-label": f"Search scopes below "
                            f"{item.eligible.scope.name}",
                        }
                    ),
                )
                scope_fields.append(Field(item.field_name))
        if self.default_duration:
            self.fields[
                "duration_hours"
            ].help_text = f"At most {duration_words(self.default_duration)}; at least 5 minutes."
        if self.requires_justification:
            self.fields["justification"].widget.attrs["required"] = True
            self.fields["justification"].help_text = "Required by the role's settings."
        why = ["justification"]
        if self.requires_ticket:
            why += ["ticket_number", "ticket_system"]
            for name in ("ticket_number", "ticket_system"):
                self.fields[name].widget.attrs["required"] = True
        else:
            del self.fields["ticket_number"], self.fields["ticket_system"]
        verify = []
        if self.requires_mfa:
            self.fields["mfa_code"].widget.attrs["required"] = True
            verify = [Fieldset("Verify it is you", "mfa_code")]
        else:
            del self.fields["mfa_code"]

        self.helper = FormHelper()
        self.helper.form_tag = False
        parts = []
        if scope_fields:
            parts.append(Fieldset("Scope", *scope_fields))
        parts += [
            Fieldset("When", Div("start", "duration_hours", css_class="row-cols-md-2")),
            Fieldset("Why", *why),
            *verify,
            StrictButton("Activate", type="submit", css_class="btn-primary"),
        ]
        self.helper.layout = Layout(*parts)

    def clean_duration_hours(self):
        hours = self.cleaned_data.get("duration_hours")
        return None if hours is None else hours_to_duration(hours)

    def activation_input(self) -> dict:
        """Keyword arguments for services.request_activate_many, from cleaned data."""
        data = self.cleaned_data
        items = []
        for item in self.items:
            chosen = data.get(item.field_name)
            scope = self.chosen.get(item.eligible.pk)
            if scope is None or scope.pk != chosen:
                scope = None  # the eligible scope itself
            items.append(
                {
                    "eligible_id": item.eligible.pk,
                    "eligible": item.eligible,  # read as the user's own by activation_items
                    "policy": item.policy,
                    "scope": scope,
                }
            )
        return {
            "items": items,
            "start": data.get("start"),
            "duration": data.get("duration_hours"),
            "justification": data.get("justification", ""),
            "ticket_number": data.get("ticket_number", ""),
            "ticket_system": data.get("ticket_system", ""),
            "mfa_code": data.get("mfa_code", ""),
        }


class JustificationForm(forms.Form):
    """Ask administrators to extend or renew an assignment: say why."""

    justification = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "required": True}),
        label="Reason",
        help_text="Administrators decide on the request with this reason.",
    )

    def __init__(self, *args, submit_label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Field("justification"),
            StrictButton(submit_label, type="submit", css_class="btn-primary"),
        )
