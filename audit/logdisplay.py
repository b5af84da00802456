"""Display texts for audit action codes: the one place they live."""

ACTION_TEXTS = {
    "pim.assignment.created": "Assignment added",
    "pim.assignment.updated": "Assignment updated",
    "pim.assignment.removed": "Assignment removed",
    "pim.assignment.extended": "Assignment extended",
    "pim.assignment.renewed": "Assignment renewed",
    "pim.assignment.started": "Assignment started",
    "pim.assignment.ended": "Assignment ended",
    "pim.assignment.exported": "Members exported",
    "pim.policy.updated": "Role settings changed",
    "pim.request.activated": "Role activated",
    "pim.request.scheduled": "Activation scheduled",
    "pim.request.submitted": "Request submitted for approval",
    "pim.request.deactivated": "Role deactivated",
    "pim.request.canceled": "Request canceled",
    "pim.request.approved": "Request approved",
    "pim.request.approval_recorded": "Approval recorded",
    "pim.request.denied": "Request denied",
    "pim.request.expired": "Request lapsed",
    "pim.request.refused": "Request refused",
    "pim.security.mfa_failed": "Wrong MFA code",
    "pim.security.mfa_enrolled": "MFA device enrolled",
    "pim.security.forbidden": "Access denied",
    "pim.security.csrf_failed": "Form refused: no valid security token",
    "pim.security.foreign_object": "Someone else's object used",
    "pim.bootstrap": "Installation bootstrapped",
}


def describe(action: str) -> str:
    return ACTION_TEXTS.get(action, action)
