"""Paging helpers shared by the apps' list pages."""

from django.core.paginator import Paginator


class CountedPaginator(Paginator):
    """A paginator told its count, when the page has counted its rows already (for its tabs,
    its menus or its progress): it does not run its own COUNT."""

    def __init__(self, object_list, per_page, count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.__dict__["count"] = count  # Paginator.count is a cached_property
