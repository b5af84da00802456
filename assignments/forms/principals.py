"""Choosing users and groups: a server-side search, and a form field that checks the choice.

With ten thousand users a list of every one is unusable, so pages never list them: the
picker asks `principal_matches` for a few at a time (static/js/portal.js), and the field
takes the chosen keys ('user:12', 'group:3') or, without scripts, user and group names.
"""

import re

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import Lower

MAX_MATCHES = 20
MAX_CHOSEN = 200  # principals one form takes: keeps the lookups to a bounded IN list
SEARCH_KINDS = ("any", "user", "group")
_KEY = re.compile(r"(user|group):([0-9]{1,18})")
_NAME_SEPARATORS = re.compile(r"[,;\n]")


def principal_key(principal) -> str:
    prefix = "group" if isinstance(principal, Group) else "user"
    return f"{prefix}:{principal.pk}"


def principal_label(principal) -> str:
    """'Erin Walsh (erin)' for a user, 'Approvers (group)' for a group."""
    if isinstance(principal, Group):
        return f"{principal.name} (group)"
    name = str(principal)
    return name if name == principal.username else f"{name} ({principal.username})"


def principal_match(principal) -> dict:
    """One search answer: the key the form takes, the label, and a detail line."""
    detail = "" if isinstance(principal, Group) else principal.email
    return {"id": principal_key(principal), "label": principal_label(principal), "detail": detail}


def principal_matches(q: str, kind: str = "any", limit: int = MAX_MATCHES) -> list[dict]:
    """Active users and groups whose names contain `q` (case-insensitive): two queries at most.

    Names that start with `q` come first; there are never more than `limit` answers.
    """
    if not q:
        return []
    found: list = []
    if kind in ("any", "group"):
        groups = Group.objects.filter(name__icontains=q).annotate(
            starts=_starts(Q(name__istartswith=q))
        )
        found += list(groups.order_by("starts", Lower("name"))[:limit])
    if kind in ("any", "user") and len(found) < limit:
        where = Q(username__icontains=q) | Q(display_name__icontains=q) | Q(email__icontains=q)
        first = Q(username__istartswith=q) | Q(display_name__istartswith=q)
        users = (
            get_user_model()
            .objects.filter(where, is_active=True)
            .annotate(starts=_starts(first))
            .order_by("starts", Lower("display_name"), "username")
        )
        found += list(users[: limit - len(found)])
    return [principal_match(p) for p in found]


def _starts(condition: Q) -> Case:
    return Case(When(condition, then=Value(0)), default=Value(1), output_field=IntegerField())


def _split(values) -> tuple[list[tuple[str, int]], list[str]]:
    """Keys ('user', 12) and typed names, each once, in the order given."""
    keys: list[tuple[str, int]] = []
    names: list[str] = []
    for value in values or []:
        value = str(value).strip()
        match = _KEY.fullmatch(value)
        if match:
            key = (match.group(1), int(match.group(2)))
            if key not in keys:
                keys.append(key)
            continue
        for name in _NAME_SEPARATORS.split(value):
            name = "".join(ch for ch in name if ch >= " ").strip()
            if name and name.lower() not in [n.lower() for n in names]:
                names.append(name)
    return keys, names


def resolve_keys(keys: list[tuple[str, int]]) -> dict[tuple[str, int], object]:
    """The active users and the groups the keys name: two queries at most."""
    user_ids = [pk for prefix, pk in keys if prefix == "user"]
    group_ids = [pk for prefix, pk in keys if prefix == "group"]
    found: dict[tuple[str, int], object] = {}
    if user_ids:
        for user in get_user_model().objects.filter(pk__in=user_ids, is_active=True):
            found[("user", user.pk)] = user
    if group_ids:
        for group in Group.objects.filter(pk__in=group_ids):
            found[("group", group.pk)] = group
    return found


def resolve_names(names: list[str]) -> dict[str, object]:
    """Typed names (lower-cased) to the active user with that user name or the group."""
    if not names:
        return {}
    users = Q()
    groups = Q()
    for name in names:
        users |= Q(username__iexact=name)
        groups |= Q(name__iexact=name)
    found: dict[str, object] = {}
    for group in Group.objects.filter(groups):
        found[group.name.lower()] = group
    for user in get_user_model().objects.filter(users, is_active=True):
        found[user.username.lower()] = user  # a user name wins over a group of the same name
    return found


class PrincipalsBoundField(forms.BoundField):
    """Adds what the picker template shows: the chosen principals, and names left typed."""

    def _parts(self):
        if not hasattr(self, "_picker_parts"):
            keys, names = _split(self.value())
            objects = resolve_keys(keys)
            chosen = [objects[key] for key in keys if key in objects]
            self._picker_parts = ([principal_match(p) for p in chosen], names)
        return self._picker_parts

    @property
    def chosen(self) -> list[dict]:
        return self._parts()[0]

    @property
    def typed(self) -> str:
        return ", ".join(self._parts()[1])


class PrincipalsField(forms.Field):
    """Users and groups, posted as 'user:<id>' / 'group:<id>' or typed names, cleaned to objects.

    Every value is checked against the database: an unknown id or name is a field error.
    """

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Choose at least one user or group.",
        "unknown": "Not a user or group of the portal: %(values)s. Search and pick from the "
        "matches.",
        "too_many": "Choose at most %(max)s users and groups at once.",
    }

    def get_bound_field(self, form, field_name):
        return PrincipalsBoundField(form, self, field_name)

    def to_python(self, value):
        if value in self.empty_values:
            return []
        return list(value) if isinstance(value, list | tuple) else [value]

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def clean(self, value):
        keys, names = _split(self.to_python(value))
        if len(keys) + len(names) > MAX_CHOSEN:
            raise ValidationError(
                self.error_messages["too_many"], code="too_many", params={"max": MAX_CHOSEN}
            )
        by_key, by_name = resolve_keys(keys), resolve_names(names)
        unknown = [f"{prefix}:{pk}" for prefix, pk in keys if (prefix, pk) not in by_key]
        unknown += [f"“{name}”" for name in names if name.lower() not in by_name]
        if unknown:
            raise ValidationError(
                self.error_messages["unknown"],
                code="unknown",
                params={"values": ", ".join(unknown)},
            )
        chosen: list = []
        for principal in [by_key[key] for key in keys] + [by_name[n.lower()] for n in names]:
            if principal not in chosen:
                chosen.append(principal)
        self.validate(chosen)
        self.run_validators(chosen)
        return chosen

    def has_changed(self, initial, data) -> bool:
        return sorted(map(str, initial or [])) != sorted(map(str, data or []))
