"""Forms of the API token pages: make a token (a name and a lifetime in days), revoke one."""

from datetime import datetime, timedelta

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Submit
from django import forms
from django.conf import settings
from django.utils import timezone

from assignments.api.tokens import NAME_MAX_LENGTH


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        help_text="The program that will use it, e.g. “deploy pipeline” or “vpn gateway”.",
        error_messages={"required": "Name the token after the program that will use it."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        longest = settings.API_TOKEN_MAX_DAYS  # read here: a setting, not an import-time constant
        self.fields["expires_in_days"] = forms.IntegerField(
            label="Expires in (days)",
            min_value=1,
            max_value=longest,
            initial=settings.API_TOKEN_DEFAULT_DAYS,
            help_text=f"At most {longest} days. It stops working at that second.",
            error_messages={
                "required": "Say how many days the token lasts.",
                "max_value": f"A token lasts at most {longest} days.",
                "min_value": "A token lasts at least a day.",
            },
        )
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(
            Field("name"),
            Field("expires_in_days"),
            Submit("submit", "Create token"),
        )

    def expires_at(self, now: datetime | None = None) -> datetime:
        return (now or timezone.now()) + timedelta(days=self.cleaned_data["expires_in_days"])


class TokenRevokeForm(forms.Form):
    """A confirmation: the button is the whole form."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Submit("submit", "Revoke the token", css_class="btn-danger"),
        )
