"""Which receiver URLs a subscription may have.

http or https only, no user name or password in the URL (it would sit in the database and the
audit log in clear: the signature is how a receiver knows the portal), and never the portal
itself (its SITE_URL, or a host it answers to in ALLOWED_HOSTS): a webhook posting into the
portal is a loop at best. Loopback receivers are allowed (a relay on the same host, the tests),
except at the port the portal's own loopback SITE_URL uses. Names are not resolved: a name that
points at the portal through DNS is not caught here. Link-local addresses (169.254.0.0/16,
fe80::/10: a cloud's metadata service) are refused.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

MAX_LENGTH = 500
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _well_formed(url: str, host: str) -> bool:
    """A host name (one label is fine on a company network: http://soar-relay:8080/) or an IP
    address, and no blank or control character anywhere."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode()
    except UnicodeError:
        return False
    return bool(_HOST_NAME.fullmatch(ascii_host))


def _port(parts) -> int | None:
    try:
        return parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None


def _portal_hosts() -> list[str]:
    """The names the portal answers to; '*' says nothing about which those are."""
    hosts = [h.lower() for h in getattr(settings, "ALLOWED_HOSTS", []) if h and h != "*"]
    site = urlsplit(getattr(settings, "SITE_URL", "") or "")
    if site.hostname:
        hosts.append(site.hostname.lower())
    return hosts


def _is_the_portal(host: str, port: int | None) -> bool:
    site = urlsplit(getattr(settings, "SITE_URL", "") or "")
    if _is_loopback(host):
        # Another service on this host is fine; the port the portal itself listens on is not.
        return bool(site.hostname) and _is_loopback(site.hostname.lower()) and port == _port(site)
    spelled = f"[{host}]" if ":" in host else host  # ALLOWED_HOSTS brackets IPv6 addresses
    return validate_host(spelled, _portal_hosts())


def url_problem(url: str) -> str | None:
    """Why the URL cannot receive webhooks, in words for the form; None when it can."""
    url = (url or "").strip()
    if not url:
        return "Give the URL the portal should post events to."
    if len(url) > MAX_LENGTH:
        return f"The URL is too long: at most {MAX_LENGTH} characters."
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [IPv6 bracket
        return "That is not a valid URL (e.g. https://soar.example.com/hooks/pim)."
    if parts.scheme.lower() not in DEFAULT_PORTS:
        return "The URL must start with http:// or https://."
    if parts.username is not None or parts.password is not None:
        return (
            "Leave the user name and password out of the URL: receivers check the signature "
            "instead (the secret is shown when you save)."
        )
    host = (parts.hostname or "").lower()
    if not _well_formed(url, host):
        return "That is not a valid URL (e.g. https://soar.example.com/hooks/pim)."
    if _port(parts) is None:
        return "The port in the URL is not a number from 1 to 65535."
    if _is_the_portal(host, _port(parts)):
        return f"The URL points at the portal itself ({host}): webhooks go to another system."
    if _is_link_local(host):
        return (
            f"The URL points at a link-local address ({host}), where clouds answer with the "
            "machine's credentials: webhooks go to a receiver with a routable address."
        )
    return None


def _is_link_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_link_local
    except ValueError:
        return False
