"""Forms of the Users and Groups pages and of the profile page: shape only; the services
hold the rules (and refuse what a tampered form would try)."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Fieldset, Layout, Submit
from django import forms
from django.core.exceptions import ValidationError

from pim_portal.models import TIME_ZONE_CHOICES
from pim_portal.people import queries, rules, services


def _helper(*fields, submit: str, css_class: str = "btn-primary") -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True  # the template's <form> has the token
    helper.layout = Layout(*fields, Submit("submit", submit, css_class=css_class))
    return helper


def time_zone_field(**kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Time zone",
        choices=TIME_ZONE_CHOICES,
        help_text="Dates and times on the pages and in your mail are shown in it.",
        error_messages={
            "invalid_choice": "“%(value)s” is not a time zone: pick one from the list."
        },
        **kwargs,
    )


class ManagerField(forms.Field):
    """A user named by username or e-mail (there may be far too many for a list)."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Manager")
        kwargs.setdefault(
            "help_text", "Username or e-mail of their manager (access reviews ask managers)."
        )
        super().__init__(**kwargs)

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "maxlength": "254"}

    def prepare_value(self, value):
        return getattr(value, "username", value)

    def to_python(self, value):
        value = str(value or "").strip()[:254]
        if not value:
            return None
        user = queries.find_user(value)
        if user is None:
            raise ValidationError(
                f"No user with the username or e-mail “{value}”.", code="manager_unknown"
            )
        return user


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    display_name = forms.CharField(label="Display name", max_length=150)
    email = forms.EmailField(label="E-mail", required=False)
    manager = ManagerField()
    time_zone = time_zone_field(initial="UTC")
    password_choice = forms.ChoiceField(
        label="Initial password",
        widget=forms.RadioSelect,
        initial=services.PASSWORD_GENERATE,
        choices=[
            (services.PASSWORD_GENERATE, "Generate a one-time password (shown once)"),
            (services.PASSWORD_SET, "Let me set it"),
            (services.PASSWORD_NONE, "No password: the user signs in with single sign-on"),
        ],
    )
    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Only when you set it yourself.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            Fieldset("User", "username", "display_name", "email", "manager", "time_zone"),
            Fieldset("Sign-in", "password_choice", "password"),
            submit="Create",
        )

    def clean(self):
        data = super().clean()
        if data.get("password_choice") == services.PASSWORD_SET and not data.get("password"):
            self.add_error("password", "Type the password, or choose to generate one.")
        return data


class UserEditForm(forms.Form):
    """A user's details; what the identity provider owns is shown read-only (and a change of
    it sent anyway is refused by the service)."""

    username = forms.CharField(max_length=150)
    display_name = forms.CharField(label="Display name", max_length=150)
    email = forms.EmailField(label="E-mail", required=False)
    manager = ManagerField()
    time_zone = time_zone_field()

    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "username": user.username,
                "display_name": user.display_name,
                "email": user.email,
                "manager": user.manager,
                "time_zone": user.time_zone,
            },
        )
        super().__init__(*args, **kwargs)
        owned = rules.provider_owned_fields(user)
        for name in owned:
            if name in self.fields:
                self.fields[name].widget.attrs["readonly"] = True
                self.fields[name].help_text = "Set by the identity provider."
        self.helper = _helper(*[Field(name) for name in self.fields], submit="Save")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the audit log.",
    )

    def __init__(self, *args, submit: str, danger: bool = False, with_reason=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not with_reason:
            del self.fields["reason"]
        self.helper = _helper(
            *self.fields, submit=submit, css_class="btn-danger" if danger else "btn-primary"
        )


class MemberAddForm(forms.Form):
    member = forms.CharField(
        label="Add a member",
        max_length=254,
        help_text="Username or e-mail.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("member", submit="Add member")

    def clean_member(self):
        value = self.cleaned_data["member"]
        user = queries.find_user(value)
        if user is None:
            raise ValidationError(
                f"No user with the username or e-mail “{value}”.", code="member_unknown"
            )
        return user


class ProfileForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=150)
    time_zone = time_zone_field()

    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault(
            "initial", {"display_name": user.display_name, "time_zone": user.time_zone}
        )
        super().__init__(*args, **kwargs)
        if "display_name" in rules.provider_owned_fields(user):
            self.fields["display_name"].widget.attrs["readonly"] = True
            self.fields["display_name"].required = False
            self.fields[
                "display_name"
            ].help_text = (
                "Your name comes from your organization's identity provider: change it there."
            )
        self.provider_owned = "display_name" in rules.provider_owned_fields(user)
        self.helper = _helper("display_name", "time_zone", submit="Save")

    def clean_display_name(self):
        value = self.cleaned_data["display_name"]
        # Left out (it is read-only for a provider's user): not a change.
        return None if self.provider_owned and not value else value
