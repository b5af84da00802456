"""Signals other apps listen to; assignments knows nothing of who listens.

`request_submitted` is sent after commit when a request starts waiting for approval, with
`request_id`. `request_canceled` is sent after commit when a request that was waiting for
approval is canceled, with `request_id` and `actor_id`. `request_lapsed` is sent after commit
when the lapse of a request past its approval deadline is recorded, with `request_id`. The
approvals app listens to all three to tell the people concerned.
"""

from django.dispatch import Signal

request_submitted = Signal()
request_canceled = Signal()
request_lapsed = Signal()
