"""Signals other apps listen to; assignments knows nothing of who listens.

`request_submitted` is sent after commit when a request starts waiting for approval, with
`request_id`. The approvals app listens to tell the approvers.
"""

from django.dispatch import Signal

request_submitted = Signal()
