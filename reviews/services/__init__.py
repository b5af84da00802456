"""Every change to access reviews, one function per use case, each audited.

- `definition`: create, change and stop a review;
- `occurrences`: start an occurrence with its snapshot of the assignments;
- `deciding`: reviewers' decisions, one by one or in bulk;
- `completion`: defaults at the end, completing, applying the results;
- `reminders`: reminding reviewers who have not finished.
"""

from reviews.services.completion import (
    ApplyOutcome,
    complete_batch,
    instance_apply,
    instance_complete_due,
    next_end,
    resume_applying,
)
from reviews.services.deciding import items_accept_recommendations, items_decide
from reviews.services.definition import (
    EDITABLE,
    review_create,
    review_snapshot,
    review_stop,
    review_update,
    reviewers_of,
)
from reviews.services.occurrences import next_due, review_actor, start_batch, start_occurrence
from reviews.services.reminders import send_reminders

__all__ = [
    "EDITABLE",
    "ApplyOutcome",
    "complete_batch",
    "instance_apply",
    "instance_complete_due",
    "items_accept_recommendations",
    "items_decide",
    "next_due",
    "next_end",
    "resume_applying",
    "review_actor",
    "review_create",
    "review_snapshot",
    "review_stop",
    "review_update",
    "reviewers_of",
    "send_reminders",
    "start_batch",
    "start_occurrence",
]
