"""SCIM filters (parsed by scim2-models into a syntax tree) as Django `Q` objects, so a search
is one indexed query whatever the number of users, never a scan in Python.

Every operator of RFC 7644 §3.4.2.2 (eq, ne, co, sw, ew, gt, ge, lt, le, pr), `and`, `or`,
`not` and value paths (`emails[type eq "work" and value co "@example.com"]`). Strings compare
case-insensitively but for externalId and ids, which are caseExact.
"""

from datetime import datetime

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from scim2_models import InvalidFilterException
from scim2_models.path import (
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from pim_portal.scim.provider import ENTERPRISE_SCHEMA

# How each attribute is stored: (column, kind). Kinds: "text" (case-insensitive), "exact"
# (caseExact text), "id" (a primary key), "bool", "time", and the e-mail's "work", which holds
# for every user with an address (the one address is the work address).
USER_ATTRIBUTES = {
    "id": ("pk", "id"),
    "username": ("username", "text"),
    "externalid": ("external_id", "exact"),
    "displayname": ("display_name", "text"),
    "name.givenname": ("first_name", "text"),
    "name.familyname": ("last_name", "text"),
    "emails": ("email", "text"),
    "emails.value": ("email", "text"),
    "emails.type": ("email", "work"),
    "active": ("is_active", "bool"),
    "meta.created": ("date_joined", "time"),
    "meta.lastmodified": ("date_joined", "time"),
    "groups": ("groups", "id"),
    "groups.value": ("groups", "id"),
    "groups.display": ("groups__name", "text"),
    "manager": ("manager_id", "id"),
    "manager.value": ("manager_id", "id"),
}
GROUP_ATTRIBUTES = {
    "id": ("pk", "id"),
    "displayname": ("name", "text"),
    "externalid": ("identity__external_id", "exact"),
    "members": ("user", "id"),
    "members.value": ("user", "id"),
    "members.type": ("user", "user"),
}

_TEXT = {
    CompareOperator.eq: "iexact",
    CompareOperator.co: "icontains",
    CompareOperator.sw: "istartswith",
    CompareOperator.ew: "iendswith",
}
_EXACT = {
    CompareOperator.eq: "exact",
    CompareOperator.co: "contains",
    CompareOperator.sw: "startswith",
    CompareOperator.ew: "endswith",
}
_ORDER = {
    CompareOperator.gt: "gt",
    CompareOperator.ge: "gte",
    CompareOperator.lt: "lt",
    CompareOperator.le: "lte",
}
NOTHING = Q(pk__in=[])


def _refuse(detail: str):
    raise InvalidFilterException(detail=detail)


def _key(attr_path, prefix: str | None = None) -> str:
    uri = (attr_path.uri or "").lower()
    if (
        uri
        and uri not in (ENTERPRISE_SCHEMA.lower(),)
        and not uri.startswith("urn:ietf:params:scim:schemas:core:2.0:")
    ):
        _refuse(f"Unknown schema {attr_path.uri!r} in the filter.")
    parts = [attr_path.attr, attr_path.sub_attr] if attr_path.sub_attr else [attr_path.attr]
    if prefix:
        parts = [prefix, *parts]
    return ".".join(p.lower() for p in parts)


def _present(column: str, kind: str) -> Q:
    if kind in ("text", "exact", "work"):
        return Q(**{f"{column}__gt": ""})
    if kind in ("id", "user"):
        return Q(**{f"{column}__isnull": False})
    return ~NOTHING  # booleans and times are always set


def _compare(column: str, kind: str, op: CompareOperator, value) -> Q:
    negate = op == CompareOperator.ne
    if negate:
        op = CompareOperator.eq
    q = _positive(column, kind, op, value)
    return ~q if negate else q


def _positive(column: str, kind: str, op: CompareOperator, value) -> Q:
    if kind in ("text", "exact"):
        if not isinstance(value, str):
            _refuse(f"{value!r} is not a string.")
        lookups = _TEXT if kind == "text" else _EXACT
        lookup = lookups.get(op) or _ORDER.get(op)
        return Q(**{f"{column}__{lookup}": value})
    if kind == "id":
        if op != CompareOperator.eq:
            _refuse(f"An id compares with eq or ne only, not {op.value}.")
        try:
            return Q(**{column: int(str(value))})
        except (TypeError, ValueError):
            return NOTHING  # no resource has that id
    if kind == "bool":
        if op != CompareOperator.eq or not isinstance(value, bool):
            _refuse("A boolean compares with eq or ne to true or false.")
        return Q(**{column: value})
    if kind == "time":
        when = parse_datetime(value) if isinstance(value, str) else None
        if not isinstance(when, datetime):
            _refuse(f"{value!r} is not a date and time (RFC 3339).")
        lookup = "exact" if op == CompareOperator.eq else _ORDER.get(op)
        if lookup is None:
            _refuse(f"A date compares with eq, ne, gt, ge, lt or le, not {op.value}.")
        return Q(**{f"{column}__{lookup}": when})
    if kind == "work":  # the one address is the work address
        ok = isinstance(value, str) and op == CompareOperator.eq and value.lower() == "work"
        return _present(column, kind) if ok else NOTHING
    if kind == "user":  # members are users
        ok = isinstance(value, str) and op == CompareOperator.eq and value.lower() == "user"
        return _present(column, kind) if ok else NOTHING
    _refuse("That attribute cannot be filtered on.")  # pragma: no cover


def to_q(node, attributes: dict, prefix: str | None = None) -> Q:
    """The `Q` of a filter's syntax tree, for a resource type's attributes."""
    if isinstance(node, LogicalExpr):
        parts = [to_q(term, attributes, prefix) for term in node.terms]
        joined = parts[0]
        for part in parts[1:]:
            joined = joined & part if node.op == LogicalOperator.and_ else joined | part
        return joined
    if isinstance(node, Not):
        return ~to_q(node.expr, attributes, prefix)
    if isinstance(node, ValuePath):
        return to_q(node.val_filter, attributes, _key(node.attr_path, prefix))
    if isinstance(node, (Comparison, Present)):
        key = _key(node.attr_path, prefix)
        if key not in attributes:
            _refuse(f"The filter names {key!r}, which cannot be filtered on here.")
        column, kind = attributes[key]
        if isinstance(node, Present):
            return _present(column, kind)
        if node.value is None:  # `eq null` is "not present", `ne null` is "present"
            absent = ~_present(column, kind)
            return ~absent if node.op == CompareOperator.ne else absent
        return _compare(column, kind, node.op, node.value)
    _refuse("The filter could not be read.")  # pragma: no cover
