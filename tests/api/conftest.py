"""API fixtures: a token for any persona, and a client that sends it, JSON in and out."""

import json

import pytest
from django.test import Client

from assignments.api import tokens
from pim_portal.actor import Actor

ACCESS = "/api/v1/access"
BATCH = "/api/v1/access/batch"


class ApiClient:
    """Django's test client speaking JSON with a bearer token (or none)."""

    def __init__(self, secret: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def _finish(self, response):
        response.json_body = json.loads(response.content) if response.content else None
        return response

    def get(self, path: str = ACCESS, params: dict | None = None, **extra):
        headers = {**self.headers, **extra.pop("headers", {})}
        return self._finish(self.client.get(path, params or {}, headers=headers, **extra))

    def access(self, principal=None, role=None, scope=None, **extra):
        params = {
            name: value
            for name, value in (("principal", principal), ("role", role), ("scope", scope))
            if value is not None
        }
        return self.get(ACCESS, params, **extra)

    def post(self, path: str = BATCH, body=None, content_type="application/json", **extra):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers = {**self.headers, **extra.pop("headers", {})}
        return self._finish(
            self.client.post(path, data=data, content_type=content_type, headers=headers, **extra)
        )

    def batch(self, *requests, **extra):
        return self.post(BATCH, {"requests": list(requests)}, **extra)


def make_token(user, name: str = "pipeline", **kwargs):
    """A token of `user` made by them, with its secret on `.secret`."""
    token, secret = tokens.api_token_create(Actor.of(user), owner=user, name=name, **kwargs)
    token.secret = secret
    return token


@pytest.fixture
def api_for():
    """api_for(user) -> an ApiClient with a fresh token of that user."""

    def build(user, name: str = "pipeline") -> ApiClient:
        return ApiClient(make_token(user, name).secret)

    return build


def error_of(response) -> dict:
    return response.json_body["error"]
