"""SCIM fixtures: a token of the persona Gina (Global Administrator), and a client that sends
it, JSON in and out."""

import json

import pytest
from django.test import Client

from pim_portal.actor import Actor
from pim_portal.scim import tokens

SCIM = "application/scim+json"


class ScimClient:
    """Django's test client speaking SCIM with a bearer token."""

    def __init__(self, secret: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def _send(self, method: str, path: str, body=None, content_type: str = SCIM, **extra):
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        kwargs = {"headers": {**self.headers, **extra.pop("headers", {})}, **extra}
        if data is not None:
            kwargs.update(data=data, content_type=content_type)
        response = getattr(self.client, method)(f"/scim/v2/{path.lstrip('/')}", **kwargs)
        response.json_body = json.loads(response.content) if response.content else None
        return response

    def get(self, path, **extra):
        return self._send("get", path, **extra)

    def post(self, path, body, **extra):
        return self._send("post", path, body, **extra)

    def put(self, path, body, **extra):
        return self._send("put", path, body, **extra)

    def patch(self, path, body, **extra):
        return self._send("patch", path, body, **extra)

    def delete(self, path, **extra):
        return self._send("delete", path, **extra)


@pytest.fixture
def scim_token(global_admin):
    token, secret = tokens.token_create(actor=Actor.of(global_admin), name="okta")
    token.secret = secret
    return token


@pytest.fixture
def scim(scim_token):
    return ScimClient(scim_token.secret)


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user_payload(username="alice@example.com", **fields):
    body = {
        "schemas": [USER_SCHEMA],
        "userName": username,
        "externalId": f"ext-{username}",
        "name": {"givenName": "Alice", "familyName": "Example"},
        "displayName": "Alice Example",
        "emails": [{"value": username, "type": "work", "primary": True}],
        "active": True,
    }
    body.update(fields)
    return body


def patch_body(*operations):
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
