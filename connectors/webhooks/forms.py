"""The subscription form: shape only; the services hold the rules (URL, name, event types) and
their messages land on the fields."""

from crispy_bootstrap5.bootstrap5 import Switch
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Fieldset, Layout, Submit
from django import forms

from connectors.webhooks import addresses, events


class SubscriptionForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="The system that receives the events, e.g. ticketing or SOAR.",
        error_messages={"required": "Name the subscription after the system that receives it."},
    )
    url = forms.CharField(
        label="URL",
        max_length=addresses.MAX_LENGTH,
        widget=forms.URLInput(attrs={"placeholder": "https://soar.example.com/hooks/pim"}),
        help_text="The portal posts each event here (http or https), signed the Standard "
        "Webhooks way. Redirects are not followed.",
        error_messages={"required": "Give the URL the portal should post events to."},
    )
    event_types = forms.MultipleChoiceField(
        label="Event types",
        choices=events.EVENT_TYPES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Pick at least one event type.",
            "invalid_choice": "“%(value)s” is not an event type: pick from the list.",
        },
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        help_text="A disabled subscription gets nothing; its pending deliveries wait.",
    )

    def __init__(self, *args, submit: str = "Save", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(
            Fieldset("Receiver", Field("name"), Field("url")),
            Fieldset("Events", Field("event_types")),
            Switch("enabled"),
            Submit("submit", submit, css_class="btn-primary"),
        )

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        problem = addresses.url_problem(url)
        if problem:
            raise forms.ValidationError(problem, code="url_refused")
        return url

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "url": data["url"],
            "event_types": list(data["event_types"]),
            "enabled": data["enabled"],
        }

    def add_service_errors(self, invalid) -> None:
        """A service's refusal, on the fields it names (the rest above the form)."""
        if not hasattr(invalid, "error_dict"):
            self.add_error(None, invalid.messages)
            return
        for field, errors in invalid.message_dict.items():
            self.add_error(field if field in self.fields else None, errors)
