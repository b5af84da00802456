"""PostgreSQL role grants: a mapping's target object is a database role, and a portal user's
account is their login role on the same server (`GRANT prod_readwrite TO alice`).

Setting it up on the server:

1. A dedicated login for the portal, no superuser: ADMIN OPTION on exactly the roles the
   mappings name (the narrow way), or CREATEROLE (up to PostgreSQL 15 it may then grant every
   role but a superuser; from 16 it grants only what it has ADMIN OPTION on)::

       CREATE ROLE pim_portal LOGIN PASSWORD '...';
       GRANT prod_readwrite TO pim_portal WITH ADMIN OPTION;   -- one per mapped role

   The password reaches the portal through the connector's secret reference, never stored.
2. A pg_hba.conf line that lets it in from the portal's hosts, with TLS::

       hostssl  postgres  pim_portal  10.0.0.0/24  scram-sha-256

   For verify-ca and verify-full libpq reads the CA from PGSSLROOTCERT or
   ~/.postgresql/root.crt of the workers' user.
3. Each portal user who may be granted a role needs the login role the account template
   names (`{username}`, lower-cased as unquoted names are); without one, no grant, saying so.

Every call gives up after the connector's timeout: connect_timeout (libpq's least is 2 s),
statement_timeout and lock_timeout on the server, and keepalives for a peer that went away.
"""

import contextlib
import math
import re
import string

import psycopg
from crispy_forms.helper import FormHelper
from django import forms
from django.core.exceptions import ValidationError
from psycopg import sql

from connectors.targets.base import Connection, Target, TargetError, TargetUnavailable, register

APPLICATION_NAME = "pim-portal"
DEFAULT_PORT = 5432
SSL_MODES = ["disable", "prefer", "require", "verify-ca", "verify-full"]


def _template_parts(template: str) -> tuple[str, str]:
    """The text before and after the one `{username}` of an account template."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise ValueError("Unbalanced braces: write {{ and }} for a literal brace.") from None
    fields = [i for i, (_, name, _, _) in enumerate(parts) if name is not None]
    if len(fields) != 1 or parts[fields[0]][1] != "username":
        raise ValueError("The template must contain {username} once, and no other field.")
    _, _, spec, conversion = parts[fields[0]]
    if spec or conversion:
        raise ValueError("Write {username} without a format or conversion.")
    before = "".join(literal for literal, *_ in parts[: fields[0] + 1])
    after = "".join(literal for literal, *_ in parts[fields[0] + 1 :])
    return before, after


class PostgresOptionsForm(forms.Form):
    dbname = forms.CharField(label="Database", initial="postgres", max_length=63)
    sslmode = forms.ChoiceField(
        label="TLS mode", choices=[(m, m) for m in SSL_MODES], initial="prefer"
    )
    account_template = forms.CharField(
        initial="{username}",
        max_length=200,
        help_text="A portal user's login role: {username} is their portal username.",
    )
    lowercase = forms.BooleanField(
        label="Lower-case account names",
        required=False,
        initial=True,
        help_text="Unquoted role names fold to lower case: Alice's role is alice.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False  # part of the connector's page form

    def clean_account_template(self) -> str:
        template = self.cleaned_data["account_template"]
        try:
            _template_parts(template)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return template


DEFAULTS = {name: field.initial or "" for name, field in PostgresOptionsForm.base_fields.items()}


def _reason(message: str) -> str:
    """libpq's own words, without its "connection to server at ... failed:" preamble."""
    message = message.strip().splitlines()[0] if message.strip() else "no reason given"
    message = re.sub(r"^connection failed:\s*", "", message)
    message = re.sub(
        r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed:\s*', "", message
    )
    return re.sub(r"^(FATAL|ERROR):\s+", "", message)


@register
class PostgresRoles(Target):
    kind = "postgresql"
    label = "PostgreSQL role grants"
    options_form = PostgresOptionsForm
    object_label = "Database role"
    object_help = "A role on the server (prod_readwrite); its members get its privileges."

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.options = {**DEFAULTS, **(connection.options or {})}
        try:
            self._before, self._after = _template_parts(self.options["account_template"])
        except ValueError as exc:
            raise TargetError(f"The connector's account template is wrong: {exc}") from None
        self.timeout = connection.timeout if connection.timeout and connection.timeout > 0 else 5.0
        self._conn: psycopg.Connection | None = None

    # -- connecting -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The server and database in an administrator's words (never with the password)."""
        host, port = self.connection.host, self.connection.port or DEFAULT_PORT
        return (
            f"postgresql://{f'[{host}]' if ':' in host else host}:{port}/{self.options['dbname']}"
        )

    def _fail(self, message: str, error: type[TargetError] = TargetError) -> TargetError:
        secret = self.connection.secret  # never in a message, even if the server repeats it
        return error(message.replace(secret, "********") if secret else message)

    def open(self) -> None:
        c = self.connection
        if not c.host:
            raise self._fail("Set the connector's host: the PostgreSQL server's name or address.")
        if not c.username:
            raise self._fail("Set the connector's username: the login the portal signs in as.")
        connect_timeout = max(2, math.ceil(self.timeout))  # libpq waits at least 2 s
        millis = max(100, int(self.timeout * 1000))
        params = {
            "host": c.host,
            "port": c.port or DEFAULT_PORT,
            "dbname": self.options["dbname"],
            "user": c.username,
            "sslmode": self.options["sslmode"],
            "application_name": APPLICATION_NAME,
            "connect_timeout": connect_timeout,
            # A lock wait gives up a little before the statement, to say which it was.
            "options": f"-c statement_timeout={millis} -c lock_timeout={millis * 9 // 10}",
            "keepalives": 1,
            "keepalives_idle": connect_timeout,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": millis,
        }
        if c.secret:
            params["password"] = c.secret
        try:
            self._conn = psycopg.connect(autocommit=True, **params)
        except psycopg.errors.ConnectionTimeout:
            raise self._fail(
                f"could not reach {self.where} within {connect_timeout} s", TargetUnavailable
            ) from None
        except psycopg.Error as exc:
            # Whatever stops the portal signing in stops every call after it.
            raise TargetUnavailable(str(self._connect_error(str(exc)))) from None

    def _connect_error(self, message: str) -> TargetError:
        reason = _reason(message)
        if "FATAL:" not in message:
            if "SSL" in reason or "certificate" in reason:
                return self._fail(
                    f"could not set up TLS with {self.where}: {reason} (check the TLS mode; "
                    "verify-ca reads the CA from PGSSLROOTCERT or ~/.postgresql/root.crt)"
                )
            return self._fail(f"could not reach {self.where}: {reason}")
        if re.match(r'database ".*" does not exist', reason):
            return self._fail(f"{reason} on {self.where}: check the connector's database option")
        hint = ""
        if re.match(r'role ".*" does not exist', reason):
            hint = ": create that login role or correct the connector's username"
        elif "password authentication failed" in reason:
            hint = ": check the password the connector's secret reference points at"
        elif "pg_hba.conf" in reason:
            hint = ": add a pg_hba.conf line for the portal's hosts"
        return self._fail(
            f"the server refused the portal's login {self.connection.username} on "
            f"{self.where}: {reason}{hint}"
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing never raises, whatever the socket did
                conn.close()

    def _query(self, query, params=(), *, raw: bool = False) -> list[tuple]:
        if self._conn is None:
            raise RuntimeError("PostgresRoles used outside `with target:` (not connected)")
        try:
            cur = self._conn.execute(query, params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            if raw:
                raise
            raise self._error(exc) from None

    def _error(self, exc: psycopg.Error) -> TargetError:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return self._fail(
                f"gave up on {self.where} after {self.timeout:g} s waiting for a lock that "
                "another session holds (it is changing the same roles)"
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return self._fail(
                f"{self.where} did not answer within {self.timeout:g} s", TargetUnavailable
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return self._fail(f"permission denied on {self.where}: {_reason(str(exc))}")
        if isinstance(exc, psycopg.OperationalError):
            return self._fail(
                f"lost the connection to {self.where}: {_reason(str(exc))}", TargetUnavailable
            )
        return self._fail(f"{self.where} refused: {_reason(str(exc))}")

    # -- reading ----------------------------------------------------------------------------

    def _state(self, role: str, account: str) -> tuple[bool, bool, bool]:
        """Whether the role exists, the account exists, and the account is a direct member."""
        # to_regrole: one index lookup each, where joins through the pg_roles view cost three
        # times as much on a server with thousands of roles.
        (row,) = self._query(
            "SELECT r.oid IS NOT NULL, a.oid IS NOT NULL,"
            " EXISTS (SELECT FROM pg_auth_members m WHERE m.roleid = r.oid AND m.member = a.oid)"
            " FROM (SELECT to_regrole(quote_ident(%(role)s)) AS oid) r,"
            " (SELECT to_regrole(quote_ident(%(account)s)) AS oid) a",
            {"role": role, "account": account},
        )
        return row

    def _missing_role(self, role: str) -> TargetError:
        hint = ""
        if role != role.lower() and self._query(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (role.lower(),)
        ):
            hint = f" (role names are case-sensitive: there is a role {role.lower()})"
        return self._fail(f'no role "{role}" on {self.where}{hint}')

    def check_object(self, obj: str) -> None:
        rows = self._query(
            "SELECT r.rolsuper,"
            " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
            " (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user),"
            " pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION')"
            " FROM pg_roles r WHERE r.rolname = %s",
            (obj,),
        )
        if not rows:
            raise self._missing_role(obj)
        role_super, login_super, login_createrole, has_admin = rows[0]
        # Up to 15, CREATEROLE grants every role but a superuser; from 16 it needs ADMIN OPTION.
        old_rules = self._conn.info.server_version < 160000
        by_createrole = login_createrole and not role_super and old_rules
        if not (login_super or has_admin or by_createrole):
            raise self._fail(
                f"the portal's login {self.connection.username} may not grant {obj} on "
                f"{self.where}: give it ADMIN OPTION or CREATEROLE"
            )

    def account_name(self, username: str) -> str:
        """The login role the account template makes of a portal username (it may not exist)."""
        name = f"{self._before}{username}{self._after}"
        return name.lower() if self.options["lowercase"] else name

    def account_of(self, user) -> str | None:
        name = self.account_name(user.username)
        return name if self._query("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)) else None

    def username_of(self, account: str) -> str | None:
        # Lower-cased names cannot say how the username was written: it comes back lower case.
        before, after = self._before, self._after
        if self.options["lowercase"]:
            before, after = before.lower(), after.lower()
        if len(account) <= len(before) + len(after):
            return None
        if not (account.startswith(before) and account.endswith(after)):
            return None
        return account[len(before) : len(account) - len(after)]

    def members(self, obj: str) -> set[str]:
        # Not the portal's own login: its ADMIN OPTION is how it grants, not access to undo.
        rows = self._query(
            "SELECT r.oid, u.rolname FROM pg_roles r"
            " LEFT JOIN pg_auth_members m ON m.roleid = r.oid"
            " LEFT JOIN pg_roles u ON u.oid = m.member AND u.rolname <> current_user"
            " WHERE r.rolname = %s",
            (obj,),
        )
        if not rows:
            raise self._missing_role(obj)
        return {member for _, member in rows if member is not None}

    def is_member(self, obj: str, account: str) -> bool:
        return self._state(obj, account)[2]

    # -- changing ---------------------------------------------------------------------------

    def _checked_state(self, obj: str, account: str, *, verb: str) -> bool:
        role_exists, account_exists, member = self._state(obj, account)
        if not role_exists:
            raise self._missing_role(obj)
        if not account_exists and verb == "grant":
            raise self._fail(f'no login role "{account}" on {self.where}')
        return member

    def _change(self, statement: sql.Composed, obj: str, account: str, *, verb: str) -> None:
        try:
            self._query(statement, raw=True)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise self._fail(
                f"the portal's login {self.connection.username} may not {verb} {obj} on "
                f"{self.where}: give it ADMIN OPTION or CREATEROLE ({_reason(str(exc))})"
            ) from None
        except psycopg.Error as exc:
            # Another worker (or a person) made the same change at the same moment.
            if self._state(obj, account)[2] != (verb == "grant"):
                raise self._error(exc) from None

    def grant(self, obj: str, account: str) -> None:
        if self._checked_state(obj, account, verb="grant"):
            return
        statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(obj), sql.Identifier(account))
        self._change(statement, obj, account, verb="grant")

    def revoke(self, obj: str, account: str) -> None:
        # A dropped login role has no memberships left: nothing to take back.
        if not self._checked_state(obj, account, verb="revoke"):
            return
        statement = sql.SQL("REVOKE {} FROM {}").format(
            sql.Identifier(obj), sql.Identifier(account)
        )
        self._change(statement, obj, account, verb="revoke")
        # From PostgreSQL 16 a REVOKE takes back only the portal's own grant, with a warning.
        if self._state(obj, account)[2]:
            raise self._fail(
                f"{account} is still a member of {obj} on {self.where}: another role granted it "
                "(REVOKE ... GRANTED BY that role, or revoke it as a superuser)"
            )
