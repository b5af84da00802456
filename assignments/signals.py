"""Signals other apps listen to; assignments knows nothing of who listens.

`request_submitted` is sent after commit when a request starts waiting for approval, with
`request_id`. `request_canceled` is sent after commit when a request that was waiting for
approval is canceled, with `request_id` and `actor_id`. `request_lapsed` is sent after commit
when the lapse of a request past its approval deadline is recorded, with `request_id`. The
approvals app listens to all three to tell the people concerned.

`assignments_changed` is sent inside the transaction of a change that wrote assignments
without `save()` (bulk creates and updates), with `assignments`: the rows, as changed. With
`post_save` of `Assignment` it tells every write; the connectors listen to both.
`accounts_changed` is sent inside the transaction that turns accounts off or on
(deprovisioning), with `user_ids`.
"""

from django.dispatch import Signal

request_submitted = Signal()
request_canceled = Signal()
request_lapsed = Signal()
assignments_changed = Signal()
accounts_changed = Signal()
