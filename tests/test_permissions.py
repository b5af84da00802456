"""The permission matrix: every URL × persona × method → the expected status.

One table, one test. A new page adds its rows to CASES; a new persona adds a column to
PERSONAS and a value to every row (a missing value fails loudly, so no page goes unchecked).
Objects a persona may not know of answer 404; pages they may see but not use answer 403.
Forms are posted empty: a manager gets the form back with its errors (200).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assignments.models import (
    Assignment,
    AssignmentKind,
    RequestAction,
    RequestStatus,
    RoleRequest,
)
from pim_portal.actor import Actor
from tests.conftest import signed_in
from tests.factories import assign, make_user, role

ANONYMOUS = "anonymous"
# Column order of the `expect` rows below; each name is a fixture in tests/conftest.py.
PERSONAS = ["outsider", "eligible_user", "security_reader", "pra", "resource_owner"]


@dataclass(frozen=True)
class Case:
    url: str  # URL name, namespace included
    args: Callable[[dict], list]  # the URL's arguments, from the `world` fixture
    method: str  # "get" or "post"
    expected: dict[str, int]  # persona → status; anonymous is always sent to sign in


def expect(outsider, eligible_user, security_reader, pra, resource_owner) -> dict[str, int]:
    return dict(zip(PERSONAS, [outsider, eligible_user, security_reader, pra, resource_owner]))


def no_args(world):
    return []


def both(url, args, get: dict, post: dict) -> list[Case]:
    return [Case(url, args, "get", get), Case(url, args, "post", post)]


# Shorthands for the rows below.
READ_ONLY_405 = expect(405, 405, 405, 405, 405)  # list pages and exports take GET only
DIRECTORY_VIEW = expect(403, 403, 200, 200, 403)
DIRECTORY_MANAGE = expect(403, 403, 403, 200, 403)
SCOPE_IN_REACH = expect(404, 404, 200, 200, 200)  # Production: Olivia owns it
SCOPE_OUT_OF_REACH = expect(404, 404, 200, 200, 404)  # Contoso, Sandbox: above or beside it
DIRECTORY_ASSIGNMENT = expect(404, 404, 403, 200, 404)
RESOURCE_ASSIGNMENT = expect(404, 404, 403, 403, 200)
FOREIGN_ASSIGNMENT = expect(404, 404, 403, 403, 404)
ALL_302, ALL_404, ALL_405 = (expect(*[status] * len(PERSONAS)) for status in (302, 404, 405))
OWN_ONLY = expect(404, 200, 404, 404, 404)  # Erin's own object


REVIEW_DIRECTORY_VIEW = expect(404, 404, 200, 200, 404)
REVIEW_RESOURCE_VIEW = expect(404, 404, 200, 200, 200)
REVIEWER_OR_VIEWER = expect(404, 200, 200, 200, 404)  # Erin reviews; Olivia is out of reach


def directory_review(world) -> list:
    return [world["directory_review"].pk]


def resource_review(world) -> list:
    return [world["resource_review"].pk]


def directory_instance(world) -> list:
    return [world["directory_review"].instances.get().pk]


def resource_instance(world) -> list:
    return [world["resource_review"].instances.get().pk]


AUDIT_VIEW = expect(403, 403, 200, 200, 200)


def _event(**fields) -> int:
    from audit import log as audit_log

    return audit_log.record(action="pim.request.activated", **fields).pk


def event_at_production(world) -> list:
    return [_event(actor=world["stranger"], scope=world["rg"].path)]


def event_at_the_root(world) -> list:
    return [_event(actor=world["stranger"], scope="/")]


def erins_own_event(world) -> list:
    return [_event(actor=world["directory_assignment"].principal_user, scope="/")]


def emergency_use(world) -> list:
    """A finished emergency access session of a break-glass account, to follow up."""
    from pim_portal import emergency

    glass = make_user("breakglass", is_emergency_access=True)
    use = emergency.emergency_use_open(user=glass)
    emergency.emergency_use_sign_out(user=glass, use_id=use.pk)
    return [use.pk]


def directory_alert(world) -> list:
    """An open directory alert with a remediation: a role that does not ask for MFA."""
    from alerts.models import Alert, Severity

    alert = Alert.objects.create(
        kind="no_mfa_on_activation", severity=Severity.LOW, title="Roles without MFA"
    )
    return [alert.pk]


def alert_at(scope_name: str):
    """An open resource alert about a scope (too many permanent owners, with a remediation)."""

    def make(world) -> list:
        from alerts.models import Alert, Severity

        alert = Alert.objects.create(
            kind="too_many_permanent_owners",
            key=str(world[scope_name].pk),
            severity=Severity.MEDIUM,
            title=f"Too many permanent owners of {world[scope_name]}",
        )
        return [alert.pk]

    return make


def authenticator_of(assignment) -> int:
    """A confirmed authenticator of the assignment's holder (made for the one case using it)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = assignment.principal_user
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True).pk


def erins_authenticator(world) -> int:
    return authenticator_of(world["directory_assignment"])


ALL_403 = expect(403, 403, 403, 403, 403)
PEOPLE_OBJECT_VIEW = expect(404, 404, 200, 200, 404)
PEOPLE_OBJECT_CHANGE = expect(404, 404, 403, 403, 404)


def a_user(world) -> list:
    return [world["stranger"].pk]


def a_group(world) -> list:
    from tests.factories import make_group

    return [make_group("Helpdesk", world["stranger"]).pk]


def a_member(world) -> list:
    return [*a_group(world), world["stranger"].pk]


def a_webhook(world) -> list:
    from connectors.webhooks import services as webhook_services

    subscription, _ = webhook_services.subscription_create(
        Actor.system("tests"),
        name="SOAR",
        url="http://127.0.0.1:9/hooks",
        event_types=["request.approved"],
    )
    return [subscription.pk]


def a_failed_webhook_delivery(world) -> list:
    from connectors.models import DeliveryState, WebhookDelivery

    subscription_pk = a_webhook(world)[0]
    failed = WebhookDelivery.objects.create(
        subscription_id=subscription_pk,
        message_id="msg_permissions",
        event_type="request.approved",
        payload={},
        state=DeliveryState.FAILED,
        created_at=timezone.now(),
    )
    return [subscription_pk, failed.pk]


WEBHOOK_CHANGE = expect(403, 403, 403, 302, 403)  # connector managers: Pat


def a_connector(world) -> list:
    """A disabled LDAP connector on a closed loopback port: testing it fails at once."""
    import socket

    from connectors.models import Connector

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = Connector.objects.create(
        name="ldap-corp",
        display_name="Corp",
        kind="ldap",
        host="127.0.0.1",
        port=port,
        enabled=False,
        options={"user_dn_template": "uid={username},dc=example"},
    )
    return [connector.pk]


def a_mapping(world) -> list:
    from connectors.models import Mapping

    connector_pk = a_connector(world)[0]
    mapping = Mapping.objects.create(
        connector_id=connector_pk, role=role("Owner"), scope=world["root"], target="cn=g,dc=x"
    )
    return [mapping.pk]


CONNECTOR_VIEW = expect(404, 404, 200, 200, 404)  # a connector's existence is private
CONNECTOR_CHANGE = expect(404, 404, 403, 200, 404)  # Sam sees it; Pat changes it
CONNECTOR_ACT = expect(404, 404, 403, 302, 404)


CASES: list[Case] = [
    # Everyone signed in: the dashboard and setting up an authenticator app.
    *both("dashboard", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both("mfa_enroll", no_args, expect(200, 200, 200, 200, 200), expect(200, 200, 200, 200, 200)),
    # The profile: everyone (an empty form comes back with its errors).
    *both("account", no_args, expect(200, 200, 200, 200, 200), expect(200, 200, 200, 200, 200)),
    # Removing an authenticator: only one's own (an empty form comes back with its error).
    *both("mfa_remove", lambda w: [erins_authenticator(w)], OWN_ONLY, OWN_ONLY),
    *both("mfa_remove", lambda w: [authenticator_of(w["foreign_assignment"])], ALL_404, ALL_404),
    # Directory roles
    *both("assignments:directory_roles", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both(
        "assignments:role_detail",
        lambda w: [w["directory_role"].pk],
        DIRECTORY_VIEW,
        READ_ONLY_405,
    ),
    *both(
        "assignments:role_detail",
        lambda w: [w["resource_role"].pk],
        expect(403, 403, 200, 200, 403),  # a resource role at the root: Olivia is below it
        READ_ONLY_405,
    ),
    *both(
        "assignments:role_export",
        lambda w: [w["directory_role"].pk],
        DIRECTORY_VIEW,
        READ_ONLY_405,
    ),
    *both(
        "assignments:policy_edit",
        lambda w: [w["directory_role"].pk],
        DIRECTORY_VIEW,
        DIRECTORY_MANAGE,
    ),
    # Resources
    *both("assignments:resources", no_args, expect(403, 403, 200, 200, 200), READ_ONLY_405),
    *both("assignments:scope_detail", lambda w: [w["sub"].pk], SCOPE_IN_REACH, READ_ONLY_405),
    *both("assignments:scope_detail", lambda w: [w["mg"].pk], SCOPE_OUT_OF_REACH, READ_ONLY_405),
    *both("assignments:scope_export", lambda w: [w["sub"].pk], SCOPE_IN_REACH, READ_ONLY_405),
    *both(
        "assignments:scope_export",
        lambda w: [w["other_sub"].pk],
        SCOPE_OUT_OF_REACH,
        READ_ONLY_405,
    ),
    *both(
        "assignments:scope_role_detail",
        lambda w: [w["sub"].pk, w["resource_role"].pk],
        SCOPE_IN_REACH,
        READ_ONLY_405,
    ),
    *both(
        "assignments:scope_role_detail",
        lambda w: [w["other_sub"].pk, w["resource_role"].pk],
        SCOPE_OUT_OF_REACH,
        READ_ONLY_405,
    ),
    *both(
        "assignments:scope_policy_edit",
        lambda w: [w["sub"].pk, w["resource_role"].pk],
        SCOPE_IN_REACH,
        expect(404, 404, 403, 403, 200),
    ),
    *both(
        "assignments:scope_policy_edit",
        lambda w: [w["other_sub"].pk, w["resource_role"].pk],
        SCOPE_OUT_OF_REACH,
        expect(404, 404, 403, 403, 404),
    ),
    # Assignments
    *both(
        "assignments:assignment_add",
        no_args,
        expect(403, 403, 403, 200, 200),
        expect(403, 403, 403, 200, 200),
    ),
    *[
        case
        for action in ("update", "extend", "remove")
        for case in [
            *both(
                f"assignments:assignment_{action}",
                lambda w: [w["directory_assignment"].pk],
                DIRECTORY_ASSIGNMENT,
                DIRECTORY_ASSIGNMENT,
            ),
            *both(
                f"assignments:assignment_{action}",
                lambda w: [w["resource_assignment"].pk],
                RESOURCE_ASSIGNMENT,
                RESOURCE_ASSIGNMENT,
            ),
            *both(
                f"assignments:assignment_{action}",
                lambda w: [w["foreign_assignment"].pk],
                FOREIGN_ASSIGNMENT,
                FOREIGN_ASSIGNMENT,
            ),
        ]
    ],
    # An empty renew is a valid one (now, for as long as the settings allow): it redirects.
    *both(
        "assignments:assignment_renew",
        lambda w: [w["ended_directory_assignment"].pk],
        DIRECTORY_ASSIGNMENT,
        expect(404, 404, 403, 302, 404),
    ),
    *both(
        "assignments:assignment_renew",
        lambda w: [w["ended_resource_assignment"].pk],
        RESOURCE_ASSIGNMENT,
        expect(404, 404, 403, 403, 302),
    ),
    # What the add-assignment and settings forms look up: for those who may assign roles.
    *both("assignments:principal_search", no_args, expect(403, 403, 403, 200, 200), READ_ONLY_405),
    *both("assignments:role_settings", no_args, expect(403, 403, 403, 200, 200), READ_ONLY_405),
    # What the activate page looks up: about the viewer's own eligible assignments only.
    *both(
        "assignments:activation_settings",
        no_args,
        expect(200, 200, 200, 200, 200),
        READ_ONLY_405,
    ),
    # The scopes below one's own (the activate form's and My roles' scope search).
    *both("assignments:my_scope_search", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    # Self-service: everyone has My roles and My requests; ids that are not theirs are 404.
    *both("assignments:my_roles", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both("assignments:my_requests", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    # Without ?eligible= ids the activate page sends everyone back to My roles.
    *both("assignments:activate", no_args, expect(302, 302, 302, 302, 302), ALL_302),
    *both(
        "assignments:deactivate",
        lambda w: [w["directory_assignment"].pk],
        ALL_405,
        ALL_404,  # Erin's, but not an activation: not something she may deactivate
    ),
    *both("assignments:deactivate", lambda w: [w["foreign_assignment"].pk], ALL_405, ALL_404),
    *[
        case
        for name in ("extend_request", "renew_request")
        for case in [
            # Erin's assignment is neither ending soon nor ended: sent back, or refused on the form.
            *both(
                f"assignments:{name}",
                lambda w: [w["directory_assignment"].pk],
                expect(404, 302, 404, 404, 404),
                expect(404, 200, 404, 404, 404),
            ),
            *both(f"assignments:{name}", lambda w: [w["foreign_assignment"].pk], ALL_404, ALL_404),
        ]
    ],
    *both(
        "assignments:request_cancel",
        lambda w: [pending_request(w["directory_assignment"]).pk],
        ALL_405,
        expect(404, 302, 404, 404, 404),
    ),
    *both(
        "assignments:request_cancel",
        lambda w: [pending_request(w["foreign_assignment"]).pk],
        ALL_405,
        ALL_404,
    ),
    # Approve requests (no approvers named: the PRA decides Erin's directory request).
    *both("approvals:inbox", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both(
        "approvals:request_detail",
        lambda w: [pending_request(w["directory_assignment"]).pk],
        expect(404, 200, 404, 200, 404),
        READ_ONLY_405,
    ),
    *both(
        "approvals:request_detail",
        lambda w: [pending_request(w["foreign_assignment"]).pk],
        expect(404, 404, 404, 200, 404),  # PRA and GA see every request, to cancel it
        READ_ONLY_405,
    ),
    *both(
        "approvals:decide",
        lambda w: [pending_request(w["directory_assignment"]).pk],
        ALL_405,
        expect(404, 403, 404, 400, 404),  # the decider gets the empty form back
    ),
    *both(
        "approvals:request_cancel_admin",
        lambda w: [pending_request(w["directory_assignment"]).pk],
        ALL_405,
        expect(404, 302, 404, 302, 404),
    ),
    *both("approvals:bulk_decide", no_args, ALL_405, ALL_302),
    # Review access: everyone has the page (their reviews waiting); managers create reviews.
    *both("reviews:index", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both(
        "reviews:review_create",
        no_args,
        expect(403, 403, 403, 200, 200),
        expect(403, 403, 403, 200, 200),  # the form back with its errors
    ),
    *both("reviews:scope_search", no_args, expect(403, 403, 403, 200, 200), READ_ONLY_405),
    # A directory review (Privileged Role Administrator) and a resource review (Contributor at
    # Production); Erin reviews both. She is a reviewer, not someone who may see the review.
    *both("reviews:review_detail", directory_review, REVIEW_DIRECTORY_VIEW, READ_ONLY_405),
    *both("reviews:review_detail", resource_review, REVIEW_RESOURCE_VIEW, READ_ONLY_405),
    *[
        case
        for name in ("review_edit", "review_stop")
        for case in [
            *both(
                f"reviews:{name}",
                directory_review,
                expect(404, 404, 403, 200, 404),
                expect(404, 404, 403, 200 if name == "review_edit" else 302, 404),
            ),
            *both(
                f"reviews:{name}",
                resource_review,
                expect(404, 404, 403, 403, 200),
                expect(404, 404, 403, 403, 200 if name == "review_edit" else 302),
            ),
        ]
    ],
    *both("reviews:instance_detail", directory_instance, REVIEWER_OR_VIEWER, READ_ONLY_405),
    *both(
        "reviews:instance_detail",
        resource_instance,
        expect(404, 200, 200, 200, 200),
        READ_ONLY_405,
    ),
    # Deciding is for reviewers only: those who may see the review but do not review get 403.
    # An empty form goes back to the page with its message (302).
    *both("reviews:decide", directory_instance, ALL_405, expect(404, 302, 403, 403, 404)),
    *both("reviews:decide", resource_instance, ALL_405, expect(404, 302, 403, 403, 403)),
    *both(
        "reviews:accept_recommendations",
        directory_instance,
        ALL_405,
        expect(404, 302, 403, 403, 404),
    ),
    *both("reviews:results", directory_instance, REVIEWER_OR_VIEWER, READ_ONLY_405),
    *both("reviews:results", resource_instance, expect(404, 200, 200, 200, 200), READ_ONLY_405),
    # The export is every item: for those who may see the review, not for its reviewers.
    *both("reviews:results_export", directory_instance, REVIEW_DIRECTORY_VIEW, READ_ONLY_405),
    *both("reviews:results_export", resource_instance, REVIEW_RESOURCE_VIEW, READ_ONLY_405),
    # Applying is for managers; in progress, it is refused with a message (302).
    *both("reviews:apply", directory_instance, ALL_405, expect(404, 403, 403, 302, 404)),
    *both("reviews:apply", resource_instance, ALL_405, expect(404, 403, 403, 403, 302)),
    # The audit log: directory viewers see every event, Olivia those at or below Production;
    # everyone has My audit. Events by someone else: in reach, or 404.
    *both("audit:event_list", no_args, AUDIT_VIEW, READ_ONLY_405),
    *both("audit:export_csv", no_args, AUDIT_VIEW, READ_ONLY_405),
    *both("audit:export_jsonl", no_args, AUDIT_VIEW, READ_ONLY_405),
    *both("my_audit", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both("audit:event_detail", event_at_production, SCOPE_IN_REACH, READ_ONLY_405),
    *both("audit:event_detail", event_at_the_root, expect(404, 404, 200, 200, 404), READ_ONLY_405),
    *both("audit:event_detail", erins_own_event, expect(404, 200, 200, 200, 404), READ_ONLY_405),
    # Emergency access follow-ups: directory viewers see them, administrators close them (an
    # empty form comes back with its error: 400).
    *both("emergency:use_list", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both("emergency:use_detail", emergency_use, expect(404, 404, 200, 200, 404), READ_ONLY_405),
    *both("emergency:use_close", emergency_use, ALL_405, expect(404, 404, 403, 400, 404)),
    # Security alerts: directory viewers see all, Olivia the resource alerts at Production;
    # directory managers scan, change settings and fix directory alerts, Olivia fixes hers.
    *both("alerts:alert_list", no_args, AUDIT_VIEW, READ_ONLY_405),
    *both("alerts:scan", no_args, ALL_405, expect(403, 403, 403, 302, 403)),
    *both(
        "alerts:settings",
        no_args,
        expect(403, 403, 200, 200, 403),
        expect(403, 403, 403, 200, 403),  # the form back with its errors
    ),
    *both("alerts:alert_detail", directory_alert, expect(403, 403, 200, 200, 404), READ_ONLY_405),
    *both("alerts:alert_detail", alert_at("sub"), expect(403, 403, 200, 200, 200), READ_ONLY_405),
    *both(
        "alerts:alert_detail",
        alert_at("other_sub"),
        expect(403, 403, 200, 200, 404),
        READ_ONLY_405,
    ),
    *both("alerts:remediate", directory_alert, ALL_405, expect(403, 403, 403, 302, 404)),
    *both("alerts:remediate", alert_at("sub"), ALL_405, expect(403, 403, 403, 403, 302)),
    *both("alerts:remediate", alert_at("other_sub"), ALL_405, expect(403, 403, 403, 403, 404)),
    # The dashboard's bulk change of standing access: directory managers (an empty form goes
    # back with its message).
    *both("dashboard_standing_access", no_args, ALL_405, expect(403, 403, 403, 302, 403)),
    # Users and Groups: directory viewers see them (anyone else: 404 for one user or group);
    # changing needs users.manage, which no persona here holds (tests/people has the rest).
    *both("scim:provisioning", no_args, ALL_403, READ_ONLY_405),
    *both("scim:token_create", no_args, ALL_405, ALL_403),
    *both("scim:token_revoke", lambda world: [1], ALL_405, ALL_403),
    *both("people:user_list", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both("people:group_list", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both("people:user_create", no_args, ALL_403, ALL_403),
    *both("people:user_detail", a_user, PEOPLE_OBJECT_VIEW, READ_ONLY_405),
    *both("people:user_edit", a_user, PEOPLE_OBJECT_CHANGE, PEOPLE_OBJECT_CHANGE),
    *both("people:user_deactivate", a_user, PEOPLE_OBJECT_CHANGE, PEOPLE_OBJECT_CHANGE),
    *both("people:user_reactivate", a_user, PEOPLE_OBJECT_CHANGE, PEOPLE_OBJECT_CHANGE),
    *both("people:user_mfa_reset", a_user, PEOPLE_OBJECT_CHANGE, PEOPLE_OBJECT_CHANGE),
    *both("people:group_detail", a_group, PEOPLE_OBJECT_VIEW, PEOPLE_OBJECT_CHANGE),
    *both("people:group_member_remove", a_member, ALL_405, PEOPLE_OBJECT_CHANGE),
    # Webhooks: directory viewers look; connector managers change (forms posted empty: 200).
    *both("connectors:webhook_list", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both("connectors:webhook_create", no_args, DIRECTORY_MANAGE, DIRECTORY_MANAGE),
    *both("connectors:webhook_detail", a_webhook, DIRECTORY_VIEW, READ_ONLY_405),
    *both("connectors:webhook_edit", a_webhook, DIRECTORY_MANAGE, DIRECTORY_MANAGE),
    *both("connectors:webhook_delete", a_webhook, DIRECTORY_MANAGE, WEBHOOK_CHANGE),
    *both("connectors:webhook_rotate", a_webhook, ALL_405, DIRECTORY_MANAGE),
    *both("connectors:webhook_test", a_webhook, ALL_405, WEBHOOK_CHANGE),
    *both("connectors:webhook_retry", a_failed_webhook_delivery, ALL_405, WEBHOOK_CHANGE),
    # Connectors: directory viewers look (anyone else: 403 for the list, 404 for a connector);
    # Global and Privileged Role Administrators change them (empty forms come back: 200).
    *both("connectors:connector_list", no_args, DIRECTORY_VIEW, READ_ONLY_405),
    *both("connectors:connector_create", no_args, DIRECTORY_MANAGE, READ_ONLY_405),
    *both("connectors:connector_create_kind", lambda w: ["ldap"], *[DIRECTORY_MANAGE] * 2),
    *both("connectors:connector_detail", a_connector, CONNECTOR_VIEW, READ_ONLY_405),
    *both("connectors:connector_findings", a_connector, CONNECTOR_VIEW, READ_ONLY_405),
    *both("connectors:connector_failures", a_connector, CONNECTOR_VIEW, READ_ONLY_405),
    *both("connectors:connector_update", a_connector, CONNECTOR_CHANGE, CONNECTOR_CHANGE),
    *both("connectors:connector_delete", a_connector, CONNECTOR_CHANGE, CONNECTOR_ACT),
    *both("connectors:connector_test", a_connector, ALL_405, CONNECTOR_ACT),
    *both("connectors:connector_reconcile", a_connector, ALL_405, CONNECTOR_ACT),
    *both("connectors:connector_retry", a_connector, ALL_405, CONNECTOR_ACT),
    *both("connectors:mapping_create", a_connector, CONNECTOR_CHANGE, CONNECTOR_CHANGE),
    *both("connectors:mapping_detail", a_mapping, CONNECTOR_VIEW, READ_ONLY_405),
    *both("connectors:mapping_update", a_mapping, CONNECTOR_CHANGE, CONNECTOR_ACT),
    *both("connectors:mapping_delete", a_mapping, CONNECTOR_CHANGE, CONNECTOR_ACT),
    # API tokens: everyone has their own (an empty form comes back with its errors: 400);
    # directory managers see and revoke everyone's; someone else's token is a 404.
    *both("api_tokens", no_args, expect(200, 200, 200, 200, 200), READ_ONLY_405),
    *both("api_token_create", no_args, ALL_405, expect(400, 400, 400, 400, 400)),
    *both("api_tokens_all", no_args, DIRECTORY_MANAGE, READ_ONLY_405),
    *both(
        "api_token_revoke",
        lambda w: [erins_api_token(w)],
        expect(404, 200, 404, 200, 404),
        expect(404, 302, 404, 302, 404),
    ),
]


def erins_api_token(world) -> int:
    from assignments.api import tokens

    erin = world["directory_assignment"].principal_user
    return tokens.api_token_create(Actor.of(erin), owner=erin, name="pipeline")[0].pk


def _flatten():
    for number, case in enumerate(CASES):
        name = case.url.split(":")[-1]
        for persona in [ANONYMOUS, *PERSONAS]:
            expected = 302 if persona == ANONYMOUS else case.expected[persona]
            yield pytest.param(
                case, persona, expected, id=f"{number:02d}-{name}-{case.method}-{persona}"
            )


@pytest.fixture
def world(tree, eligible_user):
    """The objects the URLs point at. Erin's assignments are at the root and on Production."""
    now = timezone.now()
    directory_assignment = eligible_user_assignment(eligible_user, "directory")
    resource_assignment = eligible_user_assignment(eligible_user, "resource")
    stranger = make_user("stan")
    return {
        "stranger": stranger,
        **reviews_of(tree, reviewer=eligible_user, stranger=stranger),
        **tree,
        "directory_role": role("Privileged Role Administrator"),
        "resource_role": role("Contributor"),
        "directory_assignment": directory_assignment,
        "resource_assignment": resource_assignment,
        "foreign_assignment": assign(
            stranger, "Contributor", scope=tree["other_sub"], kind=AssignmentKind.ELIGIBLE
        ),
        "ended_directory_assignment": assign(
            stranger,
            "Billing Administrator",
            kind=AssignmentKind.ELIGIBLE,
            start=now - timedelta(days=10),
            end=now - timedelta(days=1),
        ),
        "ended_resource_assignment": assign(
            stranger,
            "Reader",
            scope=tree["sub"],
            kind=AssignmentKind.ELIGIBLE,
            start=now - timedelta(days=10),
            end=now - timedelta(days=1),
        ),
    }


def reviews_of(tree, *, reviewer, stranger) -> dict:
    """A directory review and a resource review, both in progress, with Erin as reviewer of
    the stranger's assignments (and her own, which she may not decide)."""
    from reviews import services as review_services

    setup = Actor.system("tests")
    assign(stranger, "Privileged Role Administrator", kind=AssignmentKind.ELIGIBLE)
    assign(stranger, "Contributor", scope=tree["rg"], kind=AssignmentKind.ELIGIBLE)
    common = {"actor": setup, "reviewer_users": [reviewer], "duration_days": 7}
    return {
        "directory_review": review_services.review_create(
            name="Directory review", roles=[role("Privileged Role Administrator")], **common
        ),
        "resource_review": review_services.review_create(
            name="Production review", roles=[role("Contributor")], scope=tree["sub"], **common
        ),
    }


def pending_request(assignment):
    """A request pending approval by the assignment's holder, to activate it."""
    return RoleRequest.objects.create(
        action=RequestAction.SELF_ACTIVATE,
        status=RequestStatus.PENDING_APPROVAL,
        principal_user=assignment.principal_user,
        requested_by=assignment.principal_user,
        role=assignment.role,
        scope=assignment.scope,
        kind=AssignmentKind.ACTIVE,
        target_assignment=assignment,
    )


def eligible_user_assignment(user, role_kind: str):
    return Assignment.objects.get(principal_user=user, role__kind=role_kind)


@pytest.mark.parametrize(("case", "persona", "expected"), list(_flatten()))
def test_permission_matrix(request, world, case: Case, persona: str, expected: int):
    client = Client() if persona == ANONYMOUS else signed_in(request.getfixturevalue(persona))
    target = reverse(case.url, args=case.args(world))

    response = getattr(client, case.method)(target)

    assert response.status_code == expected, f"{case.method.upper()} {target} as {persona}"
    if persona == ANONYMOUS:
        assert response["Location"].startswith(reverse("login"))


# Pages that need no sign-in or belong to Django itself, and so are not in the matrix.
# Sign-in pages, before anyone is signed in (single sign-on's answer 404 when it is off).
OUTSIDE_THE_MATRIX = {"login", "login_code", "logout", "healthz", "sso:begin", "sso:callback"}


def _portal_url_names(patterns, namespace=""):
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _portal_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}"


def test_every_portal_page_is_in_the_permission_matrix():
    from django.urls import get_resolver

    names = set(_portal_url_names(get_resolver().url_patterns)) - OUTSIDE_THE_MATRIX
    covered = {case.url for case in CASES}

    assert names - covered == set(), "add rows for these pages to CASES"
