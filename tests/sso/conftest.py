"""A real OpenID Connect provider for the single sign-on tests: `oidc-provider` from npm,
run by tests/idp/provider.js on a loopback port, with a few clients and accounts.

`idp` (session scope) answers for the Django test client's http://testserver; the browser
tests start their own with `running_idp(...)` for the live server's address.
"""

import json
import os
import re
import selectors
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

IDP_DIR = Path(__file__).resolve().parents[1] / "idp"
NOT_INSTALLED = "oidc-provider not installed: npm ci --prefix tests/idp"
READY_TIMEOUT = 20  # seconds for the provider to start answering
HTTP_TIMEOUT = 10

CLIENT_ID = "pim-portal"
SHORT_LIVED_CLIENT_ID = "pim-portal-short-lived"  # its ID tokens live one second
OTHER_AUDIENCE_CLIENT_ID = "pim-portal-other-audience"  # its ID tokens name another audience
FOREIGN_KEY_CLIENT_ID = "pim-portal-foreign-key"  # its ID tokens are signed by a stranger
CLIENT_SECRET = "test-only-client-secret"
MFA_AMR = ["mfa", "otp", "hwk"]


def clients(redirect_uris: list[str]) -> list[dict]:
    base = {"client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris}
    return [
        {**base, "client_id": CLIENT_ID},
        {**base, "client_id": SHORT_LIVED_CLIENT_ID, "id_token_ttl": 1},
        {**base, "client_id": OTHER_AUDIENCE_CLIENT_ID, "id_token_audience": "another-app"},
        {**base, "client_id": FOREIGN_KEY_CLIENT_ID, "id_token_foreign_key": True},
    ]


@dataclass
class IdentityProvider:
    issuer: str
    redirect_uris: list[str]
    accounts: dict = field(default_factory=dict)

    def account(self, **claims) -> dict:
        """A new account at the provider (unique subject and username unless given)."""
        tag = uuid.uuid4().hex[:8]
        claims.setdefault("sub", f"sub-{tag}")
        claims.setdefault("preferred_username", f"user-{tag}")
        claims.setdefault("email", f"{claims['preferred_username']}@corp.example")
        claims.setdefault("name", f"User {tag}")
        claims.setdefault("amr", ["pwd"])
        sub = claims.pop("sub")
        return self.change(sub, **claims)

    def change(self, sub: str, /, **claims) -> dict:
        """Change an account's claims at the provider (merged into what it has)."""
        response = requests.put(
            f"{self.issuer}/test/accounts/{sub}", json=claims, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        self.accounts[sub] = response.json()
        return self.accounts[sub]

    def authorize(self, authorize_url: str, login: str, *, action: str = "login") -> str:
        """Follow the portal's authorization request at the provider as a person would: sign
        in as `login` (or cancel), and return the URL the provider sends the browser back to."""
        browser = requests.Session()
        response = browser.get(authorize_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if not location.startswith(self.issuer):
                    return location
                response = browser.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            form = re.search(r'<form method="post" action="([^"]+)"', response.text)
            assert form, f"no sign-in form at the provider: {response.status_code} {response.text}"
            response = browser.post(
                urljoin(response.url, unescape(form.group(1))),
                data={"login": login, "action": action},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        raise AssertionError("the provider never sent the browser back")


def _wait_ready(process: subprocess.Popen) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT
    output = ""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = process.stdout.readline()
        if not line:
            break  # it exited
        output += line
        if line.startswith("READY "):
            return line.split(" ", 1)[1].strip()
    raise RuntimeError(f"the test identity provider did not start: {output}")


@contextmanager
def running_idp(redirect_uris: list[str]):
    """Start tests/idp/provider.js for these redirect URIs; stop it afterwards."""
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip(NOT_INSTALLED)
    config = {"port": 0, "clients": clients(redirect_uris), "accounts": []}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(config, file)
    process = subprocess.Popen(
        ["node", str(IDP_DIR / "provider.js"), file.name],
        cwd=IDP_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    try:
        issuer = _wait_ready(process)
        yield IdentityProvider(issuer=issuer, redirect_uris=redirect_uris)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        process.stdout.close()
        os.unlink(file.name)


@pytest.fixture(scope="session")
def idp():
    with running_idp(["http://testserver/oidc/callback/"]) as provider:
        yield provider


def configure_sso(settings, provider: IdentityProvider, client_id: str = CLIENT_ID) -> None:
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_CLIENT_ID = client_id
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_NAME = "Contoso"
    settings.OIDC_SCOPES = ["openid", "email", "profile", "groups"]
    settings.OIDC_MFA_AMR = MFA_AMR
    settings.OIDC_MFA_ACR = ["urn:pim:test:mfa"]
    settings.OIDC_CREATE_USERS = True


@pytest.fixture
def sso(settings, idp, db) -> IdentityProvider:
    """Single sign-on on, against the test provider."""
    configure_sso(settings, idp)
    return idp


def start(client, next_url: str = "") -> str:
    """The portal's authorization request (the URL its sign-in button leads to)."""
    response = client.get("/oidc/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content
    return response["Location"]


def back_to_portal(client, callback_url: str):
    parts = urlsplit(callback_url)
    assert parts.path == "/oidc/callback/", callback_url
    return client.get(f"{parts.path}?{parts.query}")


def sso_sign_in(client, provider: IdentityProvider, login: str, *, next_url="", action="login"):
    """The whole flow: the portal's button, the provider's sign-in, the portal's callback."""
    callback = provider.authorize(start(client, next_url), login, action=action)
    return back_to_portal(client, callback)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
