"""Forms of the connector pages: a connector (with its kind's options), a mapping, enforcement.

Forms check the shape of the input; the services check who acts and, for a mapping, that the
object exists in the target (their ValidationError lands on the `target` field).
A connector's secret is never typed here: `secret_ref` names where the password is.
"""

import copy
import json

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Fieldset, Layout
from django import forms
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder

from assignments.models import ROOT_PATH, Role, Scope
from assignments.queries import tree_order
from connectors import secrets
from connectors.models import Connector
from connectors.targets import Target
from pim_portal.params import clean_text

OPTIONS_PREFIX = "options"
SCOPE_SUGGESTIONS = 200  # scopes offered as suggestions under the path field; any path is typed
SECRET_HELP = "env:NAME or file:/path — the password itself is never stored."


def _helper(*fields, legend: str) -> FormHelper:
    helper = FormHelper()
    helper.form_tag = False  # the template's <form> holds this form (and the options form)
    helper.disable_csrf = True  # the template's <form> has the token
    helper.layout = Layout(Fieldset(legend, *fields))
    return helper


def json_safe(values: dict) -> dict:
    """Cleaned data as JSON keeps it (dates and decimals as text): what `options` stores."""
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


class ConnectorForm(forms.Form):
    """The connection of a connector; its kind's options are a form of their own
    (`options_form_for`), validated together with this one (`ConnectorForms`)."""

    name = forms.SlugField(
        max_length=50,
        label="Name",
        help_text="A short name for the audit log (ldap-corp): letters, digits, - and _. "
        "It cannot change later.",
    )
    display_name = forms.CharField(max_length=200, label="Display name")
    host = forms.CharField(max_length=255, label="Host", help_text="A host name or address.")
    port = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=65535,
        label="Port",
        help_text="Blank: the usual port of the kind.",
    )
    username = forms.CharField(
        required=False,
        max_length=500,
        label="Username (bind DN or login)",
        help_text="Who the portal signs in as: a bind DN, a database login.",
    )
    secret_ref = forms.CharField(
        required=False,
        max_length=500,
        label="Password reference",
        help_text=SECRET_HELP,
        validators=[secrets.validate_reference],
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    timeout = forms.FloatField(
        min_value=0.5,
        max_value=120,
        initial=5.0,
        label="Timeout (seconds)",
        help_text="Every call to the target gives up after this long.",
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Enabled",
        help_text="A disabled connector changes nothing in its target (Test connection "
        "still signs in).",
    )

    def __init__(self, *args, connector: Connector | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connector = connector
        fields = list(self.fields)
        if connector is not None:
            del self.fields["name"]  # the audit log and the connector's actor are named by it
            fields.remove("name")
        self.helper = _helper(*fields, legend="Connection")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Connector.objects.filter(name=name).exists():
            raise ValidationError("A connector has this name already: choose another.")
        return name

    def clean_secret_ref(self) -> str:
        return self.cleaned_data["secret_ref"].strip()

    def clean(self):
        data = super().clean()
        if "secret_ref" in self.errors:
            # What was typed may be the password itself: it is not shown back.
            self.data = self.data.copy()
            self.data[self.add_prefix("secret_ref")] = ""
        return data


def options_form_for(target: type[Target], data=None, initial: dict | None = None) -> forms.Form:
    """The kind's options form, prefixed (its names never clash with the connection's) and
    rendered inside the connector's <form>."""
    form = target.options_form(data, prefix=OPTIONS_PREFIX, initial=initial or None)
    helper = copy.copy(getattr(form, "helper", None)) or FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    form.helper = helper
    return form


class ConnectorForms:
    """The connection form and the options form, valid only together."""

    def __init__(self, target: type[Target], data=None, connector: Connector | None = None):
        self.target = target
        initial = None
        options = None
        if connector is not None:
            initial = {
                field: getattr(connector, field)
                for field in ("display_name", "host", "port", "username", "secret_ref")
            }
            initial |= {"timeout": connector.timeout, "enabled": connector.enabled}
            options = dict(connector.options or {})
        self.connection = ConnectorForm(data, connector=connector, initial=initial)
        self.options = options_form_for(target, data, initial=options)

    def is_valid(self) -> bool:
        connection_valid = self.connection.is_valid()
        options_valid = self.options.is_valid()  # both, so that every error shows at once
        return connection_valid and options_valid

    def values(self) -> dict:
        """The keyword arguments of connector_create / connector_update."""
        data = self.connection.cleaned_data
        values = {
            field: data[field]
            for field in ("display_name", "host", "port", "username", "secret_ref", "timeout")
        }
        values["enabled"] = data["enabled"]
        values["options"] = json_safe(self.options.cleaned_data)
        if "name" in data:
            values["name"] = data["name"]
        return values

    def add_errors(self, error: ValidationError) -> None:
        """A service's refusal: on the connection's field it names, else above the form."""
        fields = getattr(error, "error_dict", {})
        if fields and all(field in self.connection.fields for field in fields):
            self.connection.add_error(None, error)
        else:
            self.connection.add_error(None, ValidationError(error.messages))


def normalised_path(text: str) -> str:
    path = "/" + text.strip().strip("/")
    return path if path == ROOT_PATH else path + "/"


class MappingForm(forms.Form):
    role = forms.ModelChoiceField(queryset=Role.objects.none(), label="Role")
    scope = forms.CharField(
        required=False,
        max_length=1000,
        label="Scope",
        help_text="The path of a scope, e.g. /managementGroups/contoso/subscriptions/prod/. "
        "Blank: the whole directory. Whoever holds the role active at this scope or above it "
        "is put in the target object.",
        widget=forms.TextInput(attrs={"list": "scope-paths", "spellcheck": "false"}),
    )
    target = forms.CharField(max_length=500, label="Target object")
    enforce = forms.BooleanField(
        required=False,
        label="Enforce",
        help_text="Remove members found in the target that no assignment explains.",
    )

    def __init__(self, *args, target: type[Target], **kwargs):
        super().__init__(*args, **kwargs)
        roles = self.fields["role"]
        roles.queryset = Role.objects.order_by("kind", "name")
        roles.label_from_instance = lambda r: f"{r.name} ({r.get_kind_display().lower()})"
        self.fields["target"].label = target.object_label
        self.fields["target"].help_text = target.object_help
        self.helper = _helper(
            "role", Field("scope"), "target", "enforce", legend="Role, scope and target object"
        )

    @staticmethod
    def scope_suggestions() -> list[str]:
        """A few scope paths for the field's suggestions (never the whole tree)."""
        return list(
            Scope.objects.order_by(tree_order(), "pk").values_list("path", flat=True)[
                :SCOPE_SUGGESTIONS
            ]
        )

    def clean_scope(self) -> Scope:
        text = clean_text(self.cleaned_data.get("scope"), max_length=1000)
        path = normalised_path(text) if text else ROOT_PATH
        scope = Scope.objects.filter(path=path).first()
        if scope is None:
            raise ValidationError(f"No scope has the path “{text}”.")
        return scope

    def clean_target(self) -> str:
        target = self.cleaned_data["target"].strip()
        if not target:
            raise ValidationError("Name the object in the target.")
        return target

    def clean(self):
        data = super().clean()
        role, scope = data.get("role"), data.get("scope")
        if role is not None and scope is not None and role.is_directory_role and not scope.is_root:
            self.add_error(
                "scope",
                f"{role} is a directory role, held in the whole directory: leave the scope blank.",
            )
        return data


class MappingUpdateForm(forms.Form):
    enforce = forms.BooleanField(
        required=False,
        label="Enforce",
        help_text="Remove members found in the target that no assignment explains.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("enforce", legend="Enforcement")
