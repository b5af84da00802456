from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Submit
from django import forms

from pim_portal import mfa


def _code_field(label: str, required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=8,
        required=required,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class AuthenticatorAddForm(forms.Form):
    """Name the new authenticator and confirm it; a second one also needs a current code."""

    name = forms.CharField(
        label="Name",
        max_length=64,
        initial=mfa.DEFAULT_DEVICE_NAME,
        help_text="So you can tell your authenticators apart, e.g. “Work phone”.",
    )
    code = _code_field("6-digit code from the new authenticator app")
    # Checked (and a missing one refused and audited) by the service, not here.
    current_code = _code_field(
        "6-digit code from an authenticator you already have", required=False
    )

    def __init__(self, *args, needs_current_code: bool, **kwargs):
        super().__init__(*args, **kwargs)
        fields = [Field("name"), Field("code")]
        if needs_current_code:
            fields.append(Field("current_code"))
        else:
            del self.fields["current_code"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(*fields, Submit("submit", "Add authenticator"))


class AuthenticatorRemoveForm(forms.Form):
    code = _code_field("6-digit code from any of your authenticators")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the template's <form> has the token
        self.helper.layout = Layout(
            Field("code"), Submit("submit", "Remove authenticator", css_class="btn-danger")
        )
