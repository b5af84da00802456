"""Forms of the administrator's pages of access reviews: create a review, change one.

Forms parse and check the shape of the input; the rules of a review (what may be reviewed
by whom, the schedule's arithmetic) live in reviews.services and reviews.schedule, and the
views show their messages on the form.

Scopes are never all listed (there may be thousands): the scope select offers the directory
and the scopes where the viewer manages resource roles, plus the one chosen; the page's script
searches below them (`scope_matches`), and without scripts a scope's path may be typed.
"""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Field, Fieldset, Layout, Row, Submit
from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.urls import reverse

from assignments.authz import Grants
from assignments.catalog import Perm
from assignments.forms.manage import LocalDateTimeField, manageable_roles, scopes_below
from assignments.forms.principals import PrincipalsField, principal_key
from assignments.models import ROOT_PATH, Role, Scope
from assignments.queries import tree_order
from pim_portal.params import clean_text, positive_int
from reviews.choices import (
    DEFAULT_LOOKBACK_DAYS,
    AssignmentTypes,
    DefaultDecision,
    GroupHandling,
    Recurrence,
    RecurrenceEnd,
    ReviewerType,
)
from reviews.models import AccessReview
from reviews.schedule import MAX_DURATION_DAYS
from reviews.services import EDITABLE

PRINCIPAL_TEMPLATE = "assignments/partials/principal_field.html"
MAX_SCOPES = 20  # scopes one search answers with; the picker asks again as one types
MAX_NOTIFY = 50  # addresses notified upon completion
MAX_LOOKBACK_DAYS = 365
START_NOW, START_LATER = "now", "later"

# Scopes ----------------------------------------------------------------------------------


def scope_reach(grants: Grants):
    """The scopes where the viewer may review resource roles: at or below their top scopes."""
    return scopes_below(grants.top_paths(Perm.MANAGE_RESOURCES))


def scope_matches(grants: Grants, q: str) -> dict:
    """At most 20 scopes in reach whose name or path contains `q`, in tree order, in the
    shape static/js/scope-picker.js reads."""
    scopes = scope_reach(grants)
    if q:
        scopes = scopes.filter(Q(name__icontains=q) | Q(path__icontains=q))
    found = list(scopes.order_by(tree_order(), "pk")[: MAX_SCOPES + 1])
    results = [{"id": s.pk, "label": str(s), "path": s.path} for s in found[:MAX_SCOPES]]
    return {"results": results, "more": len(found) > MAX_SCOPES}


def _scope_label(scope: Scope) -> str:
    if scope.is_root:
        return "The directory (directory roles; resource roles everywhere)"
    return f"{scope} ({scope.path})"


def _normalised_path(text: str) -> str:
    path = "/" + text.strip().strip("/")
    return path if path == ROOT_PATH else path + "/"


# E-mail addresses ------------------------------------------------------------------------


def parse_addresses(value: str) -> list[str]:
    """Comma (or semicolon) separated addresses, each once; every one must be valid."""
    addresses = [item.strip() for item in (value or "").replace(";", ",").split(",")]
    addresses = list(dict.fromkeys(item for item in addresses if item))
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
    if len(addresses) > MAX_NOTIFY:
        raise ValidationError(f"Give at most {MAX_NOTIFY} addresses to notify.")
    return addresses


def _split_principals(chosen) -> tuple[list, list[Group]]:
    chosen = chosen or []
    return (
        [p for p in chosen if not isinstance(p, Group)],
        [p for p in chosen if isinstance(p, Group)],
    )


# The settings both forms share -------------------------------------------------------------


class ReviewSettingsForm(forms.Form):
    """Name, reviewers, recurrence end and what happens upon completion."""

    name = forms.CharField(max_length=200, label="Name")
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Description",
        help_text="Shown to reviewers: why the review is done and what to check.",
    )
    reviewers = PrincipalsField(
        required=False,
        label="Reviewers",
        help_text="Users, or groups whose members review, when reviewers are selected.",
    )
    fallback_reviewers = PrincipalsField(
        required=False,
        label="Fallback reviewers",
        help_text="For a manager review: who reviews the principals without a manager.",
    )
    recurrence_end = forms.ChoiceField(
        choices=RecurrenceEnd.choices,
        initial=RecurrenceEnd.NEVER,
        widget=forms.RadioSelect,
        label="Recurrence ends",
    )
    recurrence_end_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="End date",
        help_text="No occurrence starts after this day (in the review's time zone).",
    )
    recurrence_count = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1000,
        label="Number of occurrences",
        error_messages={
            "min_value": "A recurrence ends after one occurrence at least, or it would never "
            "occur.",
        },
    )
    auto_apply = forms.BooleanField(
        required=False,
        label="Auto-apply results",
        help_text="Denied assignments are removed when the review ends; otherwise an "
        "administrator applies the results from the results page.",
    )
    default_decision = forms.ChoiceField(
        choices=DefaultDecision.choices,
        initial=DefaultDecision.NO_CHANGE,
        label="If reviewers don't respond",
    )
    require_reason_on_approve = forms.BooleanField(
        required=False, initial=True, label="Require a reason on approve"
    )
    reminders = forms.BooleanField(
        required=False,
        initial=True,
        label="Reminders",
        help_text="Remind reviewers who have not finished, halfway and one day before the end.",
    )
    notify_emails = forms.CharField(
        required=False,
        max_length=5000,
        label="Notify upon completion",
        help_text="E-mail addresses, separated by commas.",
    )
    recommendations = forms.BooleanField(
        required=False,
        initial=True,
        label="Recommendations",
        help_text="Recommend denying where the principal has not activated the role (or "
        "signed in) within the look-back period, approving otherwise.",
    )
    lookback_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_LOOKBACK_DAYS,
        initial=DEFAULT_LOOKBACK_DAYS,
        label="Look-back period (days)",
    )

    def clean_name(self):
        name = clean_text(self.cleaned_data.get("name"), max_length=200)
        if not name:
            raise ValidationError("Give the review a name.")
        return name

    def clean_notify_emails(self):
        return parse_addresses(self.cleaned_data.get("notify_emails", ""))

    def _reviewer_type(self) -> str:
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        reviewer_type = self._reviewer_type()
        needed = {
            ReviewerType.SELECTED: (
                "reviewers",
                "Choose at least one reviewer: a user or a group.",
            ),
            ReviewerType.MANAGER: (
                "fallback_reviewers",
                "Name a fallback reviewer for principals who have no manager.",
            ),
        }
        if reviewer_type in needed:
            name, text = needed[reviewer_type]
            if name in self.fields and name not in self.errors and not data.get(name):
                self.add_error(name, text)
        # The recurrence end's details are read only with the end they belong to.
        if data.get("recurrence_end") != RecurrenceEnd.ON_DATE:
            self._ignore(data, "recurrence_end_date")
        if data.get("recurrence_end") != RecurrenceEnd.AFTER_COUNT:
            self._ignore(data, "recurrence_count")
        if reviewer_type != ReviewerType.SELECTED:
            self._ignore(data, "reviewers")
        if reviewer_type != ReviewerType.MANAGER:
            self._ignore(data, "fallback_reviewers")
        return data

    def _ignore(self, data: dict, *names: str) -> None:
        """A field that does not apply to the choices made (the page's script hides it):
        neither its value nor its errors count."""
        for name in names:
            if name in self.fields:
                data[name] = None
                self._errors.pop(name, None)

    def reviewer_principals(self) -> tuple[list, list[Group]]:
        """(users, groups) reviewing: the selected reviewers, or a manager review's fallback."""
        reviewer_type = self._reviewer_type()
        if reviewer_type == ReviewerType.SELECTED:
            return _split_principals(self.cleaned_data.get("reviewers"))
        if reviewer_type == ReviewerType.MANAGER:
            return _split_principals(self.cleaned_data.get("fallback_reviewers"))
        return [], []


def _helper(*fieldsets, submit: str) -> FormHelper:
    helper = FormHelper()
    helper.layout = Layout(*fieldsets)
    helper.form_id = "review-form"
    helper.add_input(Submit("submit", submit, css_class="btn-primary"))
    return helper


def _recurrence_end_fields():
    return Row(
        Column("recurrence_end", css_class="col-md-4"),
        Column("recurrence_end_date", css_class="col-md-4"),
        Column("recurrence_count", css_class="col-md-4"),
        css_class="review-recurrence-end",
    )


def _completion_fieldset() -> Fieldset:
    return Fieldset(
        "Upon completion",
        "auto_apply",
        "default_decision",
        "require_reason_on_approve",
        "reminders",
        "notify_emails",
        "recommendations",
        "lookback_days",
    )


# Create ----------------------------------------------------------------------------------


class ReviewCreateForm(ReviewSettingsForm):
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        label="Roles",
        error_messages={"required": "Choose at least one role to review."},
    )
    scope = forms.ModelChoiceField(
        queryset=Scope.objects.all(),
        required=False,
        label="Scope",
        help_text="Assignments at this scope and every scope below it. Directory roles are "
        "always reviewed in the whole directory.",
    )
    scope_path = forms.CharField(
        required=False,
        max_length=1000,
        label="Or the path of a scope",
        help_text="Instead of the list: e.g. /managementGroups/contoso/subscriptions/prod/.",
    )
    assignment_types = forms.ChoiceField(
        choices=AssignmentTypes.choices,
        initial=AssignmentTypes.BOTH,
        widget=forms.RadioSelect,
        label="Assignment type",
    )
    include_users = forms.BooleanField(required=False, initial=True, label="Users")
    include_groups = forms.BooleanField(required=False, initial=True, label="Groups")
    group_handling = forms.ChoiceField(
        choices=GroupHandling.choices,
        initial=GroupHandling.WHOLE,
        widget=forms.RadioSelect,
        label="How groups are reviewed",
        help_text="A self-review always reviews each member.",
    )
    inactive_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Only principals inactive for (days)",
        help_text="Blank: everyone. Otherwise only those with no activation and no sign-in "
        "for so long.",
    )
    reviewer_type = forms.ChoiceField(
        choices=ReviewerType.choices,
        initial=ReviewerType.SELECTED,
        widget=forms.RadioSelect,
        label="Who reviews",
    )
    start_when = forms.ChoiceField(
        choices=[(START_NOW, "Now"), (START_LATER, "At a date and time")],
        initial=START_NOW,
        widget=forms.RadioSelect,
        label="Start",
    )
    start = LocalDateTimeField(required=False, label="Start at", help_text="In your time zone.")
    duration_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DURATION_DAYS,
        initial=14,
        label="Duration (days)",
        error_messages={
            "min_value": "A review lasts at least one day.",
            "max_value": f"A review lasts at most {MAX_DURATION_DAYS} days.",
        },
    )
    recurrence = forms.ChoiceField(
        choices=Recurrence.choices, initial=Recurrence.ONE_TIME, label="Recurrence"
    )

    def __init__(self, *args, grants: Grants, time_zone: str = "UTC", **kwargs):
        super().__init__(*args, **kwargs)
        self.grants = grants
        roles = self.fields["roles"]
        # Offered: the roles the viewer manages somewhere. Any role is accepted, so that the
        # service refuses (and audits) one the viewer may not review at the scope.
        roles.choices = [
            (role.pk, f"{role.name} ({role.get_kind_display().lower()})")
            for role in manageable_roles(grants)
        ]
        self._offer_scopes()
        search = reverse("reviews:scope_search")
        self.fields["scope"].widget.attrs.update(
            {
                "data-scope-search-url": search,
                "data-scope-search-label": "Search scopes by name or path",
            }
        )
        self.fields["start"].help_text = f"In your time zone ({time_zone})."
        self.helper = _helper(
            Fieldset("Review", "name", "description"),
            Fieldset(
                "What to review",
                "roles",
                Field("scope"),
                Field("scope_path", wrapper_class="review-scope-path"),
                "assignment_types",
                HTML("<p class='form-label mb-1'>Principals</p>"),
                Row(
                    Column("include_users", css_class="col-auto"),
                    Column("include_groups", css_class="col-auto"),
                ),
                "group_handling",
                "inactive_days",
            ),
            Fieldset(
                "Reviewers",
                "reviewer_type",
                Field("reviewers", template=PRINCIPAL_TEMPLATE),
                Field("fallback_reviewers", template=PRINCIPAL_TEMPLATE),
            ),
            Fieldset(
                "Schedule",
                "start_when",
                "start",
                Row(
                    Column("duration_days", css_class="col-md-4"),
                    Column("recurrence", css_class="col-md-8"),
                ),
                _recurrence_end_fields(),
            ),
            _completion_fieldset(),
            submit="Create review",
        )

    def _offer_scopes(self) -> None:
        """The directory (for those who manage directory roles), the viewer's top scopes, and
        the scope posted or preselected: a handful, whatever the size of the tree."""
        offered: list[Scope] = []
        if self.grants.can_manage_directory():
            offered.append(Scope.objects.root())
        tops = self.grants.top_paths(Perm.MANAGE_RESOURCES)
        if tops:
            offered += list(Scope.objects.filter(path__in=tops).order_by(tree_order(), "pk"))
        chosen = positive_int(
            self.data.get("scope") if self.is_bound else self.initial.get("scope")
        )
        if chosen and chosen not in [scope.pk for scope in offered]:
            offered += list(Scope.objects.filter(pk=chosen))
        field = self.fields["scope"]
        field.choices = [("", "Choose a scope")] + [(s.pk, _scope_label(s)) for s in offered]

    def _reviewer_type(self) -> str:
        return self.cleaned_data.get("reviewer_type", "")

    def clean_scope_path(self):
        text = clean_text(self.cleaned_data.get("scope_path"), max_length=1000)
        if not text:
            return None
        scope = Scope.objects.filter(path=_normalised_path(text)).first()
        if scope is None:
            raise ValidationError(f"No scope has the path “{text}”.")
        return scope

    def clean(self):
        data = super().clean()
        if data.get("scope_path") is not None:
            data["scope"] = data["scope_path"]
        resource_roles = [role for role in data.get("roles") or [] if not role.is_directory_role]
        if resource_roles and data.get("scope") is None and "scope" not in self.errors:
            self.add_error("scope", "Choose the scope where the resource roles are reviewed.")
        if data.get("start_when") == START_LATER:
            if data.get("start") is None and "start" not in self.errors:
                self.add_error("start", "Choose when the review starts, or start it now.")
        else:
            self._ignore(data, "start")
        if not data.get("include_users") and not data.get("include_groups"):
            self.add_error(None, "Review users, groups, or both.")
        if data.get("recurrence") == Recurrence.ONE_TIME:
            self._ignore(data, "recurrence_end", "recurrence_end_date", "recurrence_count")
            data["recurrence_end"] = RecurrenceEnd.NEVER
        return data

    def review_values(self) -> dict:
        """The keyword arguments of services.review_create (but the actor and time zone)."""
        data = self.cleaned_data
        users, groups = self.reviewer_principals()
        values = {
            name: data[name]
            for name in (
                "name",
                "description",
                "assignment_types",
                "include_users",
                "include_groups",
                "group_handling",
                "inactive_days",
                "reviewer_type",
                "start",
                "duration_days",
                "recurrence",
                "recurrence_end",
                "recurrence_end_date",
                "recurrence_count",
                "auto_apply",
                "default_decision",
                "require_reason_on_approve",
                "reminders",
                "notify_emails",
                "recommendations",
                "lookback_days",
            )
        }
        values["roles"] = list(data["roles"])
        values["scope"] = data.get("scope")
        values["reviewer_users"] = users
        values["reviewer_groups"] = groups
        return values


# Edit ------------------------------------------------------------------------------------


class ReviewEditForm(ReviewSettingsForm):
    """The settings that may change once a review exists (services.review_update)."""

    def __init__(self, *args, review: AccessReview, reviewers: tuple[list, list], **kwargs):
        self.review = review
        users, groups = reviewers
        initial = {name: getattr(review, name) for name in EDITABLE}
        initial["notify_emails"] = ", ".join(review.notify_emails or [])
        keys = [principal_key(p) for p in [*users, *groups]]
        if review.reviewer_type == ReviewerType.SELECTED:
            initial["reviewers"] = keys
        elif review.reviewer_type == ReviewerType.MANAGER:
            initial["fallback_reviewers"] = keys
        kwargs["initial"] = {**initial, **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        reviewer_fields = []
        if review.reviewer_type == ReviewerType.SELECTED:
            del self.fields["fallback_reviewers"]
            reviewer_fields = [Field("reviewers", template=PRINCIPAL_TEMPLATE)]
        elif review.reviewer_type == ReviewerType.MANAGER:
            del self.fields["reviewers"]
            reviewer_fields = [Field("fallback_reviewers", template=PRINCIPAL_TEMPLATE)]
        else:
            del self.fields["reviewers"], self.fields["fallback_reviewers"]
        schedule = []
        if review.recurrence == Recurrence.ONE_TIME:
            for name in ("recurrence_end", "recurrence_end_date", "recurrence_count"):
                del self.fields[name]
        else:
            schedule = [Fieldset("Schedule", _recurrence_end_fields())]
        parts = [Fieldset("Review", "name", "description")]
        if reviewer_fields:
            parts.append(Fieldset("Reviewers", *reviewer_fields))
        self.helper = _helper(*parts, *schedule, _completion_fieldset(), submit="Save changes")

    def _reviewer_type(self) -> str:
        return self.review.reviewer_type

    def changes(self) -> dict:
        """The keyword arguments of services.review_update (but the actor and review)."""
        data = self.cleaned_data
        changes = {name: data[name] for name in EDITABLE if name in self.fields}
        if self.review.reviewer_type != ReviewerType.SELF:
            changes["reviewer_users"], changes["reviewer_groups"] = self.reviewer_principals()
        return changes


# Settings in words -------------------------------------------------------------------------


def _yes(value: bool) -> str:
    return "Yes" if value else "No"


def recurrence_words(review: AccessReview) -> str:
    """'Weekly, 6 occurrences', 'Monthly until 2026-12-31', 'One time'."""
    words = review.get_recurrence_display()
    if review.recurrence == Recurrence.ONE_TIME:
        return words
    if review.recurrence_end == RecurrenceEnd.ON_DATE and review.recurrence_end_date:
        return f"{words} until {review.recurrence_end_date:%Y-%m-%d}"
    if review.recurrence_end == RecurrenceEnd.AFTER_COUNT and review.recurrence_count:
        count = review.recurrence_count
        return f"{words}, {count} occurrence{'' if count == 1 else 's'}"
    return f"{words}, no end"


def principals_words(review: AccessReview) -> str:
    parts = []
    if review.include_users:
        parts.append("users")
    if review.include_groups:
        parts.append(
            "groups, each member reviewed"
            if review.expands_groups()
            else "groups, each reviewed as a whole"
        )
    words = " and ".join(parts).capitalize() or "Nobody"
    if review.inactive_days:
        words += f"; only those inactive for {review.inactive_days} days"
    return words


def review_summary(review: AccessReview) -> list[tuple[str, str]]:
    """The review's settings in words, for its page (dates are shown by the template)."""
    recommendations = (
        f"Yes, looking back {review.lookback_days} days" if review.recommendations else "No"
    )
    return [
        ("Assignment type", review.get_assignment_types_display()),
        ("Principals", principals_words(review)),
        ("Reviewers", review.get_reviewer_type_display()),
        ("Duration", f"{review.duration_days} day{'' if review.duration_days == 1 else 's'}"),
        ("Recurrence", recurrence_words(review)),
        ("Time zone", review.time_zone),
        ("Auto-apply results", _yes(review.auto_apply)),
        ("If reviewers don't respond", review.get_default_decision_display()),
        ("Reason required on approve", _yes(review.require_reason_on_approve)),
        ("Reminders", _yes(review.reminders)),
        ("Recommendations", recommendations),
        ("Notified upon completion", ", ".join(review.notify_emails or []) or "Nobody"),
    ]
