"""Keyset pagination: "newer / older" pages of a long list, each as cheap as the first.

A page is asked for with ?after=<cursor> (the rows after the last one shown) or
?before=<cursor> (the rows before the first one shown). A cursor is the row's sort value (a
date-time, in microseconds since the epoch) and its id: `1767225600000000.42`. The list is
ordered newest first by (field, pk), so the next page is `WHERE (field, pk) < cursor`, read
from an index, never an OFFSET. A cursor that does not parse is ignored: page one.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Q

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(-?[0-9]{1,17})\.([0-9]{1,18})")


def cursor_of(value: datetime, pk: int) -> str:
    delta = value - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}.{pk}"


def parse_cursor(text) -> tuple[datetime, int] | None:
    """(value, pk) of a cursor, or None when it is not one (then the page is page one)."""
    if not isinstance(text, str):
        return None
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    try:
        value = EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        return None
    if not datetime.min.replace(tzinfo=UTC) < value < datetime.max.replace(tzinfo=UTC):
        return None
    return value, int(match.group(2))


@dataclass
class KeysetPage:
    """What a list template needs: the rows, and the links to the pages either side."""

    object_list: list = field(default_factory=list)
    count: int = 0
    next_cursor: str = ""
    previous_cursor: str = ""
    is_first: bool = True

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def keyset_page(rows, request, *, field_name: str, per_page: int, count: int) -> KeysetPage:
    """One page of `rows` ordered by (field_name, pk) descending (newest first)."""
    after = parse_cursor(request.GET.get("after"))
    before = None if after else parse_cursor(request.GET.get("before"))
    newest_first = (f"-{field_name}", "-pk")
    if before is not None:
        value, pk = before
        newer = Q(**{f"{field_name}__gt": value}) | Q(**{field_name: value, "pk__gt": pk})
        found = list(rows.filter(newer).order_by(field_name, "pk")[: per_page + 1])
        more_before = len(found) > per_page
        found = found[:per_page][::-1]
        more_after = True
    else:
        if after is not None:
            value, pk = after
            older = Q(**{f"{field_name}__lt": value}) | Q(**{field_name: value, "pk__lt": pk})
            rows = rows.filter(older)
        found = list(rows.order_by(*newest_first)[: per_page + 1])
        more_after = len(found) > per_page
        found = found[:per_page]
        more_before = after is not None
    if before is not None and not more_before and len(found) < per_page:
        # Back at the start, short (rows went away): page one, whatever the cursor said.
        found = list(rows.order_by(*newest_first)[: per_page + 1])
        more_after = len(found) > per_page
        found = found[:per_page]
    page = KeysetPage(object_list=found, count=count, is_first=not more_before)
    if found and more_after:
        last = found[-1]
        page.next_cursor = cursor_of(getattr(last, field_name), last.pk)
    if found and more_before:
        first = found[0]
        page.previous_cursor = cursor_of(getattr(first, field_name), first.pk)
    return page
