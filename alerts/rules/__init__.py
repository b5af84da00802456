"""Every security alert rule, in the order the alerts page lists them: Entra's own list for
directory roles and Azure resources, and what the portal itself sees happen.

`RULES[kind]` is a `Rule`: its title, severity, description and how to fix it, its
thresholds (with defaults and ranges), whether it is about the directory or about resource
scopes, its remediation action (or None), and `evaluate(thresholds, now) -> [Finding]`.
Wording and defaults follow Microsoft's "Configure security alerts for Microsoft Entra roles
in PIM" and "... for Azure roles in PIM".
"""

from functools import partial

from alerts import remediation
from alerts.models import Severity
from alerts.rules import connected, directory, resources, security
from alerts.rules.base import (
    AFFECTED_LIMIT,
    DIRECTORY,
    OWNER,
    PRIVILEGED_DIRECTORY_ROLES,
    RESOURCES,
    Finding,
    Remediation,
    Rule,
    Threshold,
)

_REMOVE = Remediation(
    label="Remove these assignments",
    confirm_text="Remove every assignment listed? Each is ended now, with its activations; "
    "the last active Global Administrator stays.",
    run=remediation.remove_assignments,
)

_RULES = [
    Rule(
        kind="roles_assigned_outside_pim",
        title="Roles are being assigned outside of PIM",
        severity=Severity.HIGH,
        description="Privileged role assignments made outside the portal are not approved, "
        "justified or announced, and may be a sign of an attack.",
        how_to_fix="Review the assignments listed and remove those nobody can account for. "
        "Find out who can write the database or use the Django admin, and stop assignments "
        "from being made there.",
        evaluate=directory.assigned_outside_pim,
        remediation=_REMOVE,
    ),
    Rule(
        kind="access_granted_outside_pim_in_connected_systems",
        title="Roles are being assigned outside of PIM (connected systems)",
        severity=Severity.HIGH,
        description="Members were added to groups or database roles that the portal manages, "
        "in the target system itself: they hold privileged access that nobody requested, "
        "approved or justified here.",
        how_to_fix="Remove the members listed from the target, or give them an assignment "
        "here if they need the access. Set the mapping to enforce, so the portal removes such "
        "members itself, and find out who can change the target directly.",
        evaluate=connected.granted_outside_pim,
        remediation=Remediation(
            label="Remove them from the targets",
            confirm_text="Take every member listed out of its group or role in the connected "
            "system now?",
            run=remediation.remove_drift,
        ),
    ),
    Rule(
        kind="connected_system_revoke_failed",
        title="Ended access could not be removed in a connected system",
        severity=Severity.HIGH,
        description="A connector could not take people out of a group or database role after "
        "their assignment ended: until it can, they still hold the access there.",
        how_to_fix="Fix the connector's connection (its page says what failed), then use "
        "Retry failed on it; or remove the members by hand in the target system.",
        evaluate=connected.revoke_failed,
    ),
    Rule(
        kind="too_many_global_admins",
        title="There are too many Global Administrators",
        severity=Severity.LOW,
        description="Global Administrator is the most privileged role: whoever takes over one "
        "of these accounts can do anything in the directory.",
        how_to_fix="Review the accounts listed and remove Global Administrator from any that "
        "do not absolutely need it; give them a less privileged role instead.",
        evaluate=directory.too_many_global_admins,
        thresholds={
            "count": Threshold("More Global Administrators than", 2, 2, 100, "accounts"),
            "percent": Threshold("and more of the privileged accounts than", 10, 0, 100, "%"),
        },
    ),
    Rule(
        kind="administrators_not_using_roles",
        title="Administrators aren't using their privileged roles",
        severity=Severity.LOW,
        description="Privileged roles that people do not use raise the chance of an attack, "
        "and an attacker can hide in an account that nobody uses.",
        how_to_fix="Review the eligible assignments listed and remove those that are not "
        "needed; schedule regular access reviews of privileged roles.",
        evaluate=directory.not_using_roles,
        thresholds={
            "days": Threshold("Not activated in", 30, 0, 100, "days"),
        },
        remediation=Remediation(
            label="Remove these eligible assignments",
            confirm_text="Remove every eligible assignment listed? Their holders can no "
            "longer activate these roles.",
            run=remediation.remove_assignments,
        ),
    ),
    Rule(
        kind="stale_accounts_in_privileged_role",
        title="Potential stale accounts in a privileged role",
        severity=Severity.MEDIUM,
        description="Accounts in a privileged role that have not signed in for a long time "
        "may be shared or service accounts that nobody maintains, and are open to attackers.",
        how_to_fix="Review the accounts listed. Remove them from privileged roles they no "
        "longer need; rotate the passwords of shared accounts when the people who know them "
        "change.",
        evaluate=directory.stale_accounts,
        thresholds={
            "days": Threshold("No sign-in in", 30, 1, 365, "days"),
        },
        remediation=Remediation(
            label="Remove these accounts from their privileged roles",
            confirm_text="End every privileged role assignment these accounts hold "
            "themselves? Roles held through a group stay.",
            run=partial(remediation.remove_users_from_roles, role_names=PRIVILEGED_DIRECTORY_ROLES),
        ),
    ),
    Rule(
        kind="no_mfa_on_activation",
        title="Roles don't require multifactor authentication for activation",
        severity=Severity.LOW,
        description="Without an MFA code, whoever takes over an eligible account can activate "
        "its roles.",
        how_to_fix="Require MFA on activation in the settings of every role listed.",
        evaluate=directory.no_mfa_on_activation,
        remediation=Remediation(
            label="Require MFA on activation",
            confirm_text='Turn on "require MFA on activation" for every role listed? Other '
            "settings and approvers stay as they are.",
            run=remediation.require_mfa_on_activation,
        ),
    ),
    Rule(
        kind="roles_activated_too_frequently",
        title="Roles are being activated too frequently",
        severity=Severity.LOW,
        description="Many activations of the same role by the same user in a short time may "
        "be a sign of an attack, or of a script working around the activation.",
        how_to_fix="Ask the users listed why they activate the role so often; make the "
        "role's maximum activation long enough for their work.",
        evaluate=directory.activated_too_frequently,
        thresholds={
            "count": Threshold("Activations of one role by one user", 3, 2, 100, "activations"),
            "minutes": Threshold("within", 60, 5, 1440, "minutes"),
        },
    ),
    Rule(
        kind="eligible_assignments_never_expire",
        title="Eligible assignments of privileged roles never expire",
        severity=Severity.MEDIUM,
        description="Eligibility without an end is never confirmed again: it outlives the "
        "job it was given for.",
        how_to_fix="Give the assignments listed an end date, and turn off permanent "
        "eligible assignments in the roles' settings.",
        evaluate=directory.eligible_never_expires,
        remediation=Remediation(
            label="Set an end date",
            confirm_text="Give every eligible assignment listed an end: the longest its "
            "role's settings allow, from now?",
            run=remediation.set_end_dates,
        ),
    ),
    Rule(
        kind="permanent_active_privileged_assignments",
        title="Privileged roles are held permanently active (standing access)",
        severity=Severity.MEDIUM,
        description="Permanent active assignments of privileged roles work without "
        "activation, MFA or justification, all the time: exactly what an attacker wants.",
        how_to_fix="Make the assignments listed eligible, so the role is activated when it is "
        "needed; keep standing access for emergency access accounts only.",
        evaluate=directory.permanent_active,
        remediation=Remediation(
            label="Make eligible",
            confirm_text="Replace every permanent active assignment listed by an eligible "
            "one? Their holders activate the role when they need it.",
            run=remediation.make_eligible,
        ),
    ),
    Rule(
        kind="resource_roles_assigned_outside_pim",
        title="Roles are being assigned outside of PIM (resources)",
        severity=Severity.HIGH,
        description="Role assignments on resources made outside the portal are not approved, "
        "justified or announced, and may be a sign of an attack.",
        how_to_fix="Review the assignments listed and remove those nobody can account for.",
        evaluate=resources.assigned_outside_pim,
        scope=RESOURCES,
        remediation=_REMOVE,
    ),
    Rule(
        kind="too_many_owners",
        title="Too many owners assigned to a resource",
        severity=Severity.MEDIUM,
        description="Every owner can change everything at the scope, including who has "
        "access to it.",
        how_to_fix="Review the owners listed and give some of them a less privileged role.",
        evaluate=resources.too_many_owners,
        scope=RESOURCES,
        thresholds={"count": Threshold("More owners than", 3, 1, 100, "accounts")},
    ),
    Rule(
        kind="too_many_permanent_owners",
        title="Too many permanent owners assigned to a resource",
        severity=Severity.MEDIUM,
        description="Permanent owners hold full control of the scope around the clock, "
        "without activation.",
        how_to_fix="Make some of the owners listed eligible, so they activate Owner when "
        "they need it.",
        evaluate=resources.too_many_permanent_owners,
        scope=RESOURCES,
        thresholds={"count": Threshold("More permanent owners than", 2, 1, 100, "accounts")},
        remediation=Remediation(
            label="Make eligible",
            confirm_text="Replace every permanent active Owner assignment listed by an "
            "eligible one?",
            run=remediation.make_eligible,
        ),
    ),
    Rule(
        kind="failed_signin_burst",
        title="A burst of failed sign-ins or MFA codes",
        severity=Severity.HIGH,
        description="Many failed sign-ins or wrong MFA codes in a short time: someone may be "
        "guessing passwords (one account, or many at once) or MFA codes.",
        how_to_fix="Look at the accounts listed and at the audit log for where the attempts "
        "come from; reset the passwords of accounts that were targeted, and make sure they "
        "have MFA devices.",
        evaluate=security.failed_signin_burst,
        thresholds={
            "count": Threshold("At least", 10, 2, 10000, "failures"),
            "minutes": Threshold("within", 15, 1, 1440, "minutes"),
        },
    ),
    Rule(
        kind="emergency_access_used",
        title="An emergency access account was used",
        severity=Severity.HIGH,
        description="Emergency access (break-glass) accounts are for when nothing else "
        "works: every use must be explained.",
        how_to_fix="Find out who used the account and why, review what it did, rotate its "
        "password, and close the follow-up with a justification. The alert resolves when "
        "the follow-up is closed.",
        evaluate=security.emergency_access_used,
    ),
    Rule(
        kind="audit_chain_broken",
        title="The audit log failed verification",
        severity=Severity.HIGH,
        description="The audit log's hash chain or its signed checkpoints do not match: "
        "events may have been changed, removed or rewritten.",
        how_to_fix="Find out who can write the audit tables; compare the log with the "
        "checkpoints kept off the database host and with the SIEM's copy. The alert resolves "
        "when a verification succeeds.",
        evaluate=security.audit_chain_broken,
    ),
]

RULES: dict[str, Rule] = {rule.kind: rule for rule in _RULES}
DIRECTORY_KINDS = [rule.kind for rule in _RULES if rule.scope == DIRECTORY]
RESOURCE_KINDS = [rule.kind for rule in _RULES if rule.scope == RESOURCES]

__all__ = [
    "AFFECTED_LIMIT",
    "DIRECTORY",
    "DIRECTORY_KINDS",
    "OWNER",
    "PRIVILEGED_DIRECTORY_ROLES",
    "RESOURCES",
    "RESOURCE_KINDS",
    "RULES",
    "Finding",
    "Remediation",
    "Rule",
    "Threshold",
]
