"""Every change to scopes, roles, role settings, assignments and requests, one function per
use case, each in one transaction that writes its audit event.

- `administration`: what administrators do to assignments (assign, update, extend, renew,
  remove);
- `role_settings`: role settings and their approvers;
- `activation`: what an eligible user does (activate, deactivate, ask to extend or renew);
- `decided`: carrying out decided requests (grant, deny, lapse) and cancelling open ones;
- `groups`: what leaving a group does to the activations it made possible;
- `standing`: making standing (permanent active) access eligible instead;
- `bulk`: removing many assignments, or members from groups, in one set-based change;
- `scopes`: the resource tree (create, rename, move, remove).

The names below are the package's public use cases; callers import them from here.
"""

from assignments.services.activation import (
    NO_DEVICE,
    BulkOutcome,
    check_mfa,
    get_own_eligible,
    request_activate,
    request_activate_many,
    request_deactivate,
    request_extend,
    request_renew,
)
from assignments.services.administration import (
    assignment_create,
    assignment_extend,
    assignment_remove,
    assignment_renew,
    assignment_update,
    refuse_ending_last_global_admin,
    shorten_activations,
)
from assignments.services.bulk import (
    MembershipOutcome,
    RemovalOutcome,
    assignments_remove_many,
    group_members_remove,
)
from assignments.services.common import UNCHANGED, RequestConflict
from assignments.services.decided import (
    request_cancel,
    request_carry_out,
    request_deny,
    request_lapse,
)
from assignments.services.groups import activations_end_on_leaving_group
from assignments.services.role_settings import (
    POLICY_FIELDS,
    policy_reset,
    policy_snapshot,
    policy_update,
)
from assignments.services.scopes import (
    scope_create,
    scope_move,
    scope_remove,
    scope_rename,
)
from assignments.services.standing import standing_make_eligible_many

__all__ = [
    "POLICY_FIELDS",
    "UNCHANGED",
    "NO_DEVICE",
    "BulkOutcome",
    "MembershipOutcome",
    "RemovalOutcome",
    "RequestConflict",
    "activations_end_on_leaving_group",
    "assignment_create",
    "assignment_extend",
    "assignment_remove",
    "assignment_renew",
    "assignment_update",
    "assignments_remove_many",
    "check_mfa",
    "get_own_eligible",
    "group_members_remove",
    "policy_reset",
    "policy_snapshot",
    "policy_update",
    "refuse_ending_last_global_admin",
    "request_activate",
    "request_activate_many",
    "request_cancel",
    "request_deactivate",
    "request_deny",
    "request_extend",
    "request_carry_out",
    "request_lapse",
    "request_renew",
    "scope_create",
    "scope_move",
    "scope_remove",
    "scope_rename",
    "shorten_activations",
    "standing_make_eligible_many",
]
