"""The alert settings page: one small form per rule (its switch and thresholds), all sent
together in one page form, each with the rule's kind as its prefix.

The forms parse the shape of the input (a number, a switch); the limits of each threshold are
the rule's, enforced by `alerts.services.setting_update`, whose messages land on the rule's form.
The limits are also written into the inputs (min, max) so that a browser can say so early.
"""

from crispy_bootstrap5.bootstrap5 import Switch
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Layout, Row
from django import forms
from django.core.exceptions import ValidationError


def _unit(threshold) -> str:
    if not threshold.unit:
        return ""
    return threshold.unit if threshold.unit == "%" else f" {threshold.unit}"


def _limits(threshold) -> str:
    unit = _unit(threshold)
    low, high = threshold.minimum, threshold.maximum
    if low is not None and high is not None:
        return f"From {low} to {high}{unit}."
    if low is not None:
        return f"At least {low}{unit}."
    if high is not None:
        return f"At most {high}{unit}."
    return f"In {threshold.unit}." if threshold.unit else ""


def _is_whole(threshold) -> bool:
    values = (threshold.default, threshold.minimum, threshold.maximum)
    return all(value is None or float(value).is_integer() for value in values)


def threshold_field(threshold) -> forms.Field:
    """A number input for one threshold, labelled with its unit and limits."""
    attrs = {}
    if threshold.minimum is not None:
        attrs["min"] = threshold.minimum
    if threshold.maximum is not None:
        attrs["max"] = threshold.maximum
    label = threshold.label + (f" ({threshold.unit})" if threshold.unit else "")
    messages = {
        "required": f'Give a value for "{threshold.label}".',
        "invalid": f"{threshold.label} must be a {'whole ' if _is_whole(threshold) else ''}number.",
    }
    field_class = forms.IntegerField if _is_whole(threshold) else forms.FloatField
    if field_class is forms.FloatField:
        attrs["step"] = "any"
    return field_class(
        label=label,
        help_text=_limits(threshold),
        widget=forms.NumberInput(attrs=attrs),
        error_messages=messages,
    )


class RuleSettingsForm(forms.Form):
    """One rule's switch and thresholds. Read-only for viewers who may not change them."""

    enabled = forms.BooleanField(required=False, label="Alert on")

    def __init__(
        self, data=None, *, rule, enabled: bool, thresholds: dict, read_only: bool = False
    ):
        initial = {"enabled": enabled}
        initial.update({name: thresholds.get(name) for name in rule.thresholds})
        super().__init__(data, prefix=rule.kind, initial=initial)
        self.rule = rule
        for name, threshold in rule.thresholds.items():
            self.fields[name] = threshold_field(threshold)
        if read_only:
            for field in self.fields.values():
                field.disabled = True
        self.helper = FormHelper()
        self.helper.form_tag = False  # the page holds one form for every rule
        self.helper.disable_csrf = True
        columns = [Column(Field(name), css_class="col-sm-6 col-lg-4") for name in rule.thresholds]
        self.helper.layout = Layout(Switch("enabled"), *([Row(*columns)] if columns else []))

    @property
    def enabled_value(self) -> bool:
        return bool(self.cleaned_data["enabled"])

    def threshold_values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.rule.thresholds}

    def add_service_errors(self, error: ValidationError) -> None:
        """The service's refusal on the fields it names, or on the rule as a whole."""
        if hasattr(error, "error_dict"):
            for name, errors in error.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        else:
            self.add_error(None, error.messages)
