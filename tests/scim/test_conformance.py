"""scim2-tester, an independent SCIM conformance checker, against the portal served live.

Every check it makes for the features ServiceProviderConfig declares (discovery, create, read,
replace, PATCH add/replace/remove, delete, queries) must pass: none may end in error.
"""

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from pim_portal.actor import Actor
from pim_portal.scim import tokens
from tests.factories import assign, make_user

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


@pytest.fixture
def live_token(live_server):
    admin = make_user("gina", display_name="Gina Global")
    assign(admin, "Global Administrator", permanent=True)
    _, secret = tokens.token_create(actor=Actor.of(admin), name="scim2-tester")
    return secret


def test_scim2_tester_finds_no_error(live_server, live_token):
    http = httpx2.Client(
        base_url=f"{live_server.url}/scim/v2",
        headers={"Authorization": f"Bearer {live_token}"},
        timeout=10,
    )
    with http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)
    ran = [r for r in results if r.status != Status.SKIPPED]
    failures = [f"{r.title}: {r.status.name} {r.reason}" for r in ran if r.status not in PASSED]
    assert len(ran) > 30, [f"{r.title}: {r.status}" for r in results]
    print(f"{len(ran)} checks ran;", "\n".join(failures))
    assert failures == []
