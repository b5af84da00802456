"""A real OpenLDAP server for the connector tests: Debian's slapd in a temporary directory.

`Slapd(workdir).start()` writes a cn=config with `slapadd -n0` (the core, cosine and
inetorgperson schemas, one mdb database for dc=contoso,dc=example), seeds it with `slapadd -n1`
(ou=people, ou=groups, an unprivileged bind user who may read but not write), makes a
self-signed certificate for 127.0.0.1 and listens on two free loopback ports, ldap:// (with
StartTLS) and ldaps://. The tests read the server back with the real `ldapsearch`, never with
the code under test. Every wait has a deadline.
"""

import base64
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMAS = Path("/etc/ldap/schema")
INSTALL = "apt-get install slapd ldap-utils"

BASE = "dc=contoso,dc=example"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "admin-secret-7f3a"
READER_DN = f"cn=reader,{BASE}"
READER_PASSWORD = "reader-secret-91c2"
# A DN kept in groupOfNames groups whose `member` would otherwise be empty (no entry behind it).
PLACEHOLDER = f"cn=placeholder,{BASE}"

# uid -> (DN, mail). Most users are named by uid; "Erin" is named by cn, as Active Directory
# names its users, and found by mail; "smith, john" needs escaping in a DN.
USERS = {
    "alice": (f"uid=alice,{PEOPLE}", "alice@contoso.example"),
    "bob": (f"uid=bob,{PEOPLE}", "bob@contoso.example"),
    "carol": (f"uid=carol,{PEOPLE}", "carol@contoso.example"),
    "smith, john": (f"uid=smith\\, john,{PEOPLE}", "john.smith@contoso.example"),
    "erin": (f"cn=Erin Example,{PEOPLE}", "erin@contoso.example"),
}


def missing() -> str | None:
    """Why the server cannot run here, or None."""
    tools = [SLAPD, SLAPADD, "ldapsearch", "ldapmodify", "ldapdelete", "openssl"]
    absent = [tool for tool in tools if not shutil.which(tool)]
    if absent:
        return f"needs OpenLDAP ({', '.join(absent)} not found): {INSTALL}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config_ldif(workdir: Path) -> str:
    schemas = "\n".join(
        f"include: file://{SCHEMAS / name}.ldif" for name in ("core", "cosine", "inetorgperson")
    )
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcLogLevel: none
olcTLSCertificateFile: {workdir}/server.pem
olcTLSCertificateKeyFile: {workdir}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcDbDirectory: {workdir}/data
olcDbMaxSize: 67108864
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""


def _data_ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: contoso\no: Contoso",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: reader\nuserPassword: {READER_PASSWORD}",
    ]
    for uid, (dn, mail) in USERS.items():
        cn = dn.split(",")[0].split("=", 1)[1] if dn.startswith("cn=") else uid
        entries.append(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {uid.split()[0]}\n"
            f"mail: {mail}"
        )
    return "\n\n".join(entries) + "\n"


def _run(*args: str, stdin: str | None = None, timeout: float = 10) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


class Slapd:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.port = 0
        self.ldaps_port = 0
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "server.pem")

    def start(self, deadline_seconds: float = 15) -> None:
        self._make_certificate()
        confdir, datadir = self.workdir / "slapd.d", self.workdir / "data"
        confdir.mkdir()
        datadir.mkdir()
        _run(SLAPADD, "-n0", "-F", str(confdir), stdin=_config_ldif(self.workdir))
        _run(SLAPADD, "-n1", "-F", str(confdir), stdin=_data_ldif())
        for _attempt in range(3):  # another process may take a free port before slapd does
            self.port, self.ldaps_port = free_port(), free_port()
            urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
            log = open(self.workdir / "slapd.log", "w")  # noqa: SIM115 (slapd keeps writing)
            # -d keeps slapd in the foreground, so that it is our child and stops with us.
            self.process = subprocess.Popen(
                [SLAPD, "-d", "0", "-h", urls, "-F", str(confdir)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if self._wait_until_answering(time.monotonic() + deadline_seconds):
                return
        raise RuntimeError(f"slapd did not start: {(self.workdir / 'slapd.log').read_text()}")

    def _make_certificate(self) -> None:
        _run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(self.workdir / "server.key"), "-out", str(self.workdir / "server.pem"),
        )  # fmt: skip

    def _wait_until_answering(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # it exited (a port taken): the caller tries other ports
            probe = subprocess.run(
                ["ldapsearch", "-x", "-H", self.uri, "-o", "nettimeout=1", "-s", "base", "-b", ""],
                capture_output=True,
                timeout=5,
            )
            if probe.returncode == 0:
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    # The real OpenLDAP clients, bound as the directory's administrator.
    def _client(self, tool: str, *args: str, stdin: str | None = None) -> str:
        bind = ["-x", "-H", self.uri, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-o", "nettimeout=5"]
        return _run(tool, *bind, *args, stdin=stdin)

    def add(self, ldif: str) -> None:
        self._client("ldapmodify", "-a", stdin=ldif)

    def modify(self, ldif: str) -> None:
        self._client("ldapmodify", stdin=ldif)

    def delete(self, dn: str) -> None:
        self._client("ldapdelete", "-c", dn)

    def values(self, dn: str, attribute: str) -> list[str]:
        """Every value of one attribute of one entry, as `ldapsearch` prints it."""
        out = self._client(
            "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", "base", "-b", dn, attribute
        )
        found = []
        for line in out.splitlines():
            name, _, value = line.partition(":")
            if name.lower() != attribute.lower():
                continue
            if value.startswith(":"):  # base64, for values LDIF cannot show plainly
                value = base64.b64decode(value[1:].strip()).decode()
            found.append(value.strip())
        return found
