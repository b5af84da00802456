"""The instance's item counts (`ReviewInstance.item_counts`), recounted after every change.

Each service that changes items calls `item_counts_refresh` in its own transaction, after its
updates. The instance's row is locked first, so that the count, a new statement, sees every
change committed before it: of two reviewers deciding at once, the one who counts last counts
both decisions.
"""

from reviews.models import ReviewInstance
from reviews.queries import count_items


def item_counts_refresh(instance_id: int) -> list[list]:
    """Recount the instance's items and keep the counts on it; in the caller's transaction."""
    ReviewInstance.objects.select_for_update().filter(pk=instance_id).values_list("pk").first()
    counts = count_items(instance_id)
    ReviewInstance.objects.filter(pk=instance_id).update(item_counts=counts)
    return counts
