from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Fieldset, Layout
from django import forms

from approvals.services import INBOX_FILTERS, bulk_limit
from assignments.forms.manage import LocalDateTimeField
from assignments.models import AssignmentKind
from assignments.services import UNCHANGED

DECISIONS = [("approve", "Approve"), ("deny", "Deny")]
LOCAL_DATETIME = "%Y-%m-%dT%H:%M"


class DecisionForm(forms.Form):
    """Approve or deny one request; the buttons carry `decision`."""

    decision = forms.ChoiceField(choices=DECISIONS, widget=forms.HiddenInput)
    justification = forms.CharField(
        label="Justification",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Give a justification for your decision."},
        help_text="Required. The requester and the audit log see it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(Field("justification"))

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"

    def changes(self) -> dict:
        return {}


class AdministratorDecisionForm(DecisionForm):
    """An extend or renew: the administrator may change the new start, end and type."""

    start = LocalDateTimeField(
        label="Start",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_DATETIME),
        help_text="Leave as it is to keep what was asked. Times are in your time zone.",
    )
    end = LocalDateTimeField(
        label="End",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_DATETIME),
    )
    permanent = forms.BooleanField(label="Permanent (no end)", required=False)
    kind = forms.ChoiceField(
        label="Assignment type", choices=AssignmentKind.choices, required=False
    )

    def __init__(self, *args, role_request=None, **kwargs):
        self.role_request = role_request
        initial = kwargs.setdefault("initial", {})
        if role_request is not None:
            initial.setdefault("start", role_request.start)
            initial.setdefault("end", role_request.end)
            initial.setdefault("permanent", role_request.end is None)
            initial.setdefault("kind", role_request.kind)
        super().__init__(*args, **kwargs)
        self.helper.layout = Layout(
            Fieldset(
                "New assignment (applied when you approve)",
                Field("start"),
                Field("end"),
                Field("permanent"),
                Field("kind"),
            ),
            Field("justification"),
        )

    def clean(self):
        data = super().clean()
        if data.get("decision") != "approve":
            return data  # a deny changes nothing: its dates are not checked
        start, end = data.get("start"), data.get("end")
        if data.get("permanent") and end:
            self.add_error("end", "Leave the end empty for a permanent assignment.")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return data

    def changes(self) -> dict:
        """Only what differs from the request, so an untouched form approves it as asked."""
        if not self.approve or self.role_request is None:
            return {}
        data, asked = self.cleaned_data, self.role_request
        changes = {}
        start = data.get("start")
        if start and _minute(start) != _minute(asked.start):
            changes["start"] = start
        end = None if data.get("permanent") else (data.get("end") or UNCHANGED)
        if end is not UNCHANGED and _minute(end) != _minute(asked.end):
            changes["end"] = end
        if data.get("kind") and data["kind"] != asked.kind:
            changes["kind"] = data["kind"]
        return changes


def _minute(value):
    return value.replace(second=0, microsecond=0) if value is not None else None


class BulkDecisionForm(forms.Form):
    """Approve or deny the selected requests of the inbox with one justification; or, with
    `all_matching`, every request waiting for the user that matches the inbox's filters (the
    server runs the filter again), up to the bulk limit."""

    decision = forms.ChoiceField(choices=DECISIONS)
    justification = forms.CharField(
        max_length=2000,
        error_messages={"required": "Give a justification for your decision."},
    )
    request = forms.CharField(required=False)  # the checkboxes; read with getlist
    all_matching = forms.BooleanField(required=False)
    role = forms.IntegerField(required=False)
    scope = forms.IntegerField(required=False)
    requester = forms.IntegerField(required=False)

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.request_ids: list[int] = []
        if data is not None:
            self._raw_ids = data.getlist("request")

    def clean(self):
        data = super().clean()
        if data.get("all_matching"):
            return data  # the filter chooses, not the ids
        ids = []
        for raw in getattr(self, "_raw_ids", []):
            try:
                ids.append(int(raw))
            except (TypeError, ValueError):
                raise forms.ValidationError("The selection is not valid.") from None
        if not ids:
            raise forms.ValidationError("Select at least one request.")
        limit = bulk_limit()
        if len(ids) > limit:
            raise forms.ValidationError(f"Decide at most {limit:,} requests at once.")
        self.request_ids = list(dict.fromkeys(ids))
        return data

    @property
    def takes_all_matching(self) -> bool:
        return bool(self.cleaned_data.get("all_matching"))

    @property
    def filters(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in INBOX_FILTERS}

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"
