"""LDAP group membership: a role makes its holders members of a group (their DNs in its
`member` or `uniqueMember` attribute), with ldap3.

The connector's host and port are the directory's (389, or 636 with LDAPS), its username the
DN the portal binds as, its secret that DN's password. The bind DN needs to read the groups and
the users' entries and to write the member attribute of the mapped groups, nothing more.
Certificates are always verified, against the system's CAs or the CA file in the options.

OpenLDAP (groupOfNames, users named by uid):
    StartTLS on, member attribute `member`,
    user DN template `uid={username},ou=people,dc=contoso,dc=example`, username attribute `uid`,
    placeholder member `cn=placeholder,dc=contoso,dc=example` (groupOfNames and
    groupOfUniqueNames must keep one member; it stays in and is never reported as one),
    an ACL such as `to dn.subtree="ou=groups,dc=contoso,dc=example" attrs=member
    by dn.exact="cn=pim,ou=services,dc=contoso,dc=example" write by users read`.
    For groupOfUniqueNames, member attribute `uniqueMember`.

Active Directory (users named by their full name, `CN=Erin Example,OU=Staff,...`):
    LDAPS (or StartTLS on 389), member attribute `member`, user search base
    `OU=Staff,DC=contoso,DC=example` with the filter `(sAMAccountName={username})` (or
    `(userPrincipalName={username})` when the portal's usernames are UPNs), username attribute
    `sAMAccountName`, no placeholder (an AD group may be empty); delegate "Modify the membership
    of a group" on the groups' OU to the bind account.
"""

import contextlib
import math
import re
import ssl

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout
from django import forms
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, NO_ATTRIBUTES, NONE, SUBTREE, Server, Tls
from ldap3 import Connection as LdapConnection
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError, LDAPInvalidFilterError
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from connectors.targets.base import Target, TargetError, TargetUnavailable, register

# LDAP result codes (RFC 4511, section 4.1.9).
SUCCESS, SIZE_LIMIT_EXCEEDED, NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS = 0, 4, 16, 20
NO_SUCH_OBJECT, INVALID_CREDENTIALS, INSUFFICIENT_ACCESS, OBJECT_CLASS_VIOLATION = 32, 49, 50, 65
TOKEN = "{username}"


def _rdns(dn: str) -> list[tuple[tuple[str, str], ...]]:
    """The DN's RDNs, each its (attribute, unescaped value) pairs; TargetError if it is no DN."""
    try:
        avas = parse_dn(dn, strip=True)
    except LDAPInvalidDnError:
        raise TargetError(f"{dn!r} is not a DN") from None
    rdns, current = [], []
    for attribute, value, separator in avas:
        current.append((attribute.strip().lower(), _unescape(value)))
        if separator != "+":
            rdns.append(tuple(current))
            current = []
    return rdns


def _unescape(value: str) -> str:
    """RFC 4514: `\\XX` is a byte in hex, `\\c` the character c."""
    raw = re.sub(rb"\\([0-9A-Fa-f]{2})|\\(.)", _unescaped, value.encode(), flags=re.DOTALL)
    return raw.decode("utf-8", "replace")


def _unescaped(match: re.Match) -> bytes:
    return bytes.fromhex(match[1].decode()) if match[1] else match[2]


def _lower(rdns) -> list:
    return [tuple(sorted((a, v.lower()) for a, v in rdn)) for rdn in rdns]


def same_dn(a: str, b: str) -> bool:
    """Whether two DNs name the same entry: attributes and values compared without case."""
    try:
        return _lower(_rdns(a)) == _lower(_rdns(b))
    except TargetError:
        return False


def _text(label: str, help_text: str, **kwargs) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, max_length=500, help_text=help_text, **kwargs
    )


class LdapOptionsForm(forms.Form):
    use_ssl = forms.BooleanField(required=False, label="LDAPS", help_text="TLS from the start.")
    start_tls = forms.BooleanField(
        required=False, label="StartTLS", help_text="Upgrade a plain connection before binding."
    )
    tls_ca_file = _text(
        "CA certificates file", "A PEM file of CAs to verify the server with (else the system's)."
    )
    member_attribute = forms.ChoiceField(
        choices=[
            ("member", "member (groupOfNames, Active Directory)"),
            ("uniqueMember", "uniqueMember (groupOfUniqueNames)"),
        ],
        initial="member",
    )
    placeholder_member = _text(
        "Placeholder member", "A DN kept in each group (they may not be empty) so the last can go."
    )
    user_dn_template = _text(
        "User DN template", "uid={username},ou=people,dc=contoso,dc=example (or a search)."
    )
    user_search_base = _text(
        "User search base", "Where to search for users, instead of a template."
    )
    user_search_filter = _text(
        "User search filter", "(uid={username}), or (sAMAccountName={username}) for AD."
    )
    username_attribute = forms.RegexField(
        regex=r"^[A-Za-z][A-Za-z0-9-]*$",
        initial="uid",
        help_text="The attribute that holds the portal username (uid, sAMAccountName).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False  # a part of the connector's form
        self.helper.layout = Layout(
            Fieldset("Transport", "use_ssl", "start_tls", "tls_ca_file"),
            Fieldset("Groups", "member_attribute", "placeholder_member"),
            Fieldset("Users", *list(self.fields)[5:]),
        )

    def _dn(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        if value:
            try:
                _rdns(value)
            except TargetError as exc:
                raise forms.ValidationError(str(exc)) from None
        return value

    def clean_placeholder_member(self) -> str:
        return self._dn("placeholder_member")

    def clean_user_search_base(self) -> str:
        return self._dn("user_search_base")

    def clean_user_dn_template(self) -> str:
        template = self._dn("user_dn_template")
        first = template and _rdns(template)[0]
        if template and (template.count(TOKEN) != 1 or len(first) > 1 or TOKEN not in first[0][1]):
            raise forms.ValidationError("Put {username} once in the value of the first RDN.")
        return template

    def clean_user_search_filter(self) -> str:
        search = self.cleaned_data["user_search_filter"].strip()
        if search and TOKEN not in search:
            raise forms.ValidationError("Put {username} in the filter.")
        try:
            search and parse_filter(search.replace(TOKEN, "x"), None, False, False, None, False)
        except LDAPInvalidFilterError:
            raise forms.ValidationError("Not an LDAP filter, like (uid={username}).") from None
        return search

    def clean(self):
        data = super().clean()
        if data.get("use_ssl") and data.get("start_tls"):
            self.add_error("start_tls", "Choose LDAPS or StartTLS, not both.")
        template, base, search = (
            data.get(f) for f in ("user_dn_template", "user_search_base", "user_search_filter")
        )
        if template and (base or search):
            self.add_error("user_dn_template", "Use a DN template or a search, not both.")
        elif template == "":
            for name in ("user_search_base", "user_search_filter"):
                if data.get(name) == "":  # absent when it is already invalid
                    self.add_error(name, "Give a search base and a filter, or a DN template.")
        return data


DEFAULTS = {"member_attribute": "member", "username_attribute": "uid"}


@register
class LdapGroups(Target):
    kind = "ldap"
    label = "LDAP group membership"
    options_form = LdapOptionsForm
    object_label = "Group DN"
    object_help = "cn=db-admins,ou=groups,dc=contoso,dc=example"

    def __init__(self, connection) -> None:
        super().__init__(connection)
        self.options = {**DEFAULTS, **{k: v for k, v in connection.options.items() if v}}
        self.member = self.options["member_attribute"]
        self.placeholder = self.options.get("placeholder_member")
        self.bind_dn = connection.username or "the anonymous user"
        self.secure = bool(self.options.get("use_ssl"))
        self.port = connection.port or (636 if self.secure else 389)
        self.url = f"{'ldaps' if self.secure else 'ldap'}://{connection.host}:{self.port}"
        self._ldap: LdapConnection | None = None

    def open(self) -> None:
        c, o = self.connection, self.options
        tls = None
        if self.secure or o.get("start_tls"):
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=o.get("tls_ca_file") or None)
        server = Server(
            c.host, self.port, self.secure, tls=tls, get_info=NONE, connect_timeout=c.timeout
        )
        ldap = LdapConnection(
            server,
            user=c.username or None,
            password=c.secret or None,
            receive_timeout=math.ceil(c.timeout),  # ldap3 packs it as a C integer on Linux
            auto_referrals=False,
            raise_exceptions=False,
        )
        if c.username and not c.secret:
            raise TargetError(f"no password for {c.username}: set the connector's secret")
        try:
            ldap.open()
            if o.get("start_tls") and not ldap.start_tls():
                raise TargetError(f"{self.url} refused StartTLS: {ldap.result['description']}")
            if not ldap.bind():
                if ldap.result["result"] == INVALID_CREDENTIALS:
                    raise TargetError(f"invalid credentials for {self.bind_dn}")
                raise self._refused(f"sign in as {self.bind_dn}", ldap.result)
        except (LDAPException, TargetError) as exc:
            self._ldap = ldap
            self.close()
            if isinstance(exc, LDAPException):
                raise self._unreachable(exc) from None
            # Whatever stops the portal signing in stops every call after it.
            raise TargetUnavailable(str(exc)) from None
        self._ldap = ldap

    def close(self) -> None:
        ldap, self._ldap = self._ldap, None
        with contextlib.suppress(Exception):  # letting go never fails the caller
            ldap and ldap.unbind()

    def _unreachable(self, exc: LDAPException) -> TargetUnavailable:
        reason = str(exc).lower()
        if "timed out" in reason or "timeout" in reason:
            return TargetUnavailable(
                f"could not reach {self.url} within {self.connection.timeout:g} s"
            )
        if "refused" in reason:
            return TargetUnavailable(f"could not reach {self.url}: connection refused")
        if untrusted := re.search(r"certificate verify failed: ([\w .-]+)", str(exc)):
            return TargetUnavailable(
                f"TLS with {self.url} failed: its certificate is not trusted "
                f"({untrusted[1].strip()}); give the CA certificates file in the options"
            )
        return TargetUnavailable(f"could not reach {self.url}: {exc}")

    def _refused(self, what: str, result: dict) -> TargetError:
        if result["result"] == INSUFFICIENT_ACCESS:
            return TargetError(f"{self.bind_dn} may not {what} (insufficient access)")
        detail = f": {result['message']}" if result.get("message") else ""
        return TargetError(f"the directory refused to {what}: {result['description']}{detail}")

    def _call(self, operation: str, *args, **kwargs) -> tuple[int, dict, list[dict]]:
        """One operation: its result code, the result and the entries found."""
        if self._ldap is None:
            raise RuntimeError("use the target in a `with` block")
        try:
            getattr(self._ldap, operation)(*args, **kwargs)
        except LDAPException as exc:
            raise self._unreachable(exc) from None
        result, response = self._ldap.result, self._ldap.response or []
        return result["result"], result, [r for r in response if r["type"] == "searchResEntry"]

    def _read(self, dn: str, attributes) -> dict | None:
        """One entry's attributes, or None when there is no such entry."""
        _rdns(dn)
        code, result, entries = self._call(
            "search", dn, "(objectClass=*)", BASE, attributes=attributes
        )
        if code == NO_SUCH_OBJECT or (code == SUCCESS and not entries):
            return None
        if code != SUCCESS:
            raise self._refused(f"read {dn}", result)
        return entries[0]["attributes"]

    def _values(self, group: str) -> list[str]:
        attributes = self._read(group, [self.member])
        if attributes is None:
            raise TargetError(f"no group {group}")
        return _list(attributes.get(self.member))

    def check_object(self, obj: str) -> None:
        self._values(obj)

    def account_of(self, user) -> str | None:
        username = user.get_username()
        if not username:
            return None
        if template := self.options.get("user_dn_template"):
            dn = template.replace(TOKEN, escape_rdn(username))
            return dn if self._read(dn, NO_ATTRIBUTES) is not None else None
        base = self.options["user_search_base"]
        search = self.options["user_search_filter"].replace(TOKEN, escape_filter_chars(username))
        code, result, entries = self._call(
            "search", base, search, SUBTREE, attributes=NO_ATTRIBUTES, size_limit=2
        )
        if code == NO_SUCH_OBJECT:
            raise TargetError(f"no entry {base} (the user search base)")
        if code not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
            raise self._refused(f"search {base} for {search}", result)
        if len(entries) > 1:
            raise TargetError(f"more than one entry under {base} matches {search}")
        return entries[0]["dn"] if entries else None

    def account_key(self, account: str) -> str:
        """DNs compared as the directory compares them (case, spacing and escapes aside)."""
        try:
            return repr(_lower(_rdns(account)))
        except TargetError:
            return account.strip().lower()

    def username_of(self, account: str) -> str | None:
        try:
            rdns = _rdns(account)
        except TargetError:
            return None
        if template := self.options.get("user_dn_template"):
            # The template read backwards: the same parent, then its first RDN around {username}.
            shape = _rdns(template)
            if len(rdns) != len(shape) or _lower(rdns[1:]) != _lower(shape[1:]) or len(rdns[0]) > 1:
                return None
            (name, value), ((shape_name, shape_value),) = rdns[0][0], shape[0]
            prefix, suffix = shape_value.lower().split(TOKEN)
            lowered = value.lower()
            if name != shape_name or not (lowered.startswith(prefix) and lowered.endswith(suffix)):
                return None
            return value[len(prefix) : len(value) - len(suffix)] or None
        base = _lower(_rdns(self.options["user_search_base"]))
        if _lower(rdns)[len(rdns) - len(base) :] != base:
            return None  # outside the search base: not one of ours
        attribute = self.options["username_attribute"]
        values = _list((self._read(account, [attribute]) or {}).get(attribute))
        return str(values[0]) if values else None

    def members(self, obj: str) -> set[str]:
        return {
            v for v in self._values(obj) if not (self.placeholder and same_dn(v, self.placeholder))
        }

    def is_member(self, obj: str, account: str) -> bool:
        return _find(self._values(obj), account) is not None

    def grant(self, obj: str, account: str) -> None:
        if _find(self._values(obj), account) is not None:
            return
        if self._read(account, NO_ATTRIBUTES) is None:
            raise TargetError(f"no entry {account}: the user has no account in the directory")
        self._modify(obj, [(MODIFY_ADD, [account])], f"add {account} to {obj}")

    def revoke(self, obj: str, account: str) -> None:
        values = self._values(obj)
        if (stored := _find(values, account)) is None:
            return
        changes = [(MODIFY_DELETE, [stored])]
        if self.placeholder and len(values) == 1:  # a group may not be empty: the placeholder in
            changes.insert(0, (MODIFY_ADD, [self.placeholder]))
        self._modify(obj, changes, f"remove {account} from {obj}")

    def _modify(self, obj: str, changes: list, what: str) -> None:
        code, result, _ = self._call("modify", obj, {self.member: changes})
        if code in (SUCCESS, ATTRIBUTE_OR_VALUE_EXISTS, NO_SUCH_ATTRIBUTE):
            return  # done, or done by another worker between our read and our change
        if code == NO_SUCH_OBJECT:
            raise TargetError(f"no group {obj}")
        if code == OBJECT_CLASS_VIOLATION and changes[-1][0] == MODIFY_DELETE:
            raise TargetError(
                f"{obj} cannot lose its last {self.member}: "
                "set a placeholder member DN in the connector's options"
            )
        raise self._refused(what, result)


def _list(values) -> list[str]:
    return [values] if isinstance(values, str) else list(values or [])


def _find(values: list[str], account: str) -> str | None:
    """The value that names the account, as the directory stores it."""
    return next((v for v in values if same_dn(v, account)), None)
