"""Seed a small believable company, Contoso, to try the portal with: `manage.py seed_demo`.

Everything is made through the services (as the administrator persona), so the audit log and
the requests are the ones real use would leave. A second run adds nothing and prints the
logins again.
"""

import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from alerts import services as alert_services
from assignments import services
from assignments.models import (
    Assignment,
    AssignmentKind,
    Role,
    Scope,
    ScopeKind,
)
from reviews import services as review_services
from reviews.models import DefaultDecision, GroupHandling, Recurrence, ReviewerType

DEMO_PASSWORD = "demo-pass-2026"
DOMAIN = "contoso.example"
ADMIN_USERNAME = "admin"
ADMIN_EMAIL = f"pat.morgan@{DOMAIN}"  # with the username, tells a seeded database

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"

ELIGIBLE = AssignmentKind.ELIGIBLE
ACTIVE = AssignmentKind.ACTIVE


@dataclass(frozen=True)
class Person:
    username: str
    first: str
    last: str
    time_zone: str
    manager: str | None = None
    groups: tuple[str, ...] = ()
    persona: str = ""  # set for the people whose login the command prints


# The org chart, top down (a manager comes before their reports).
PEOPLE = [
    Person("morgan.blake", "Morgan", "Blake", "America/New_York"),
    Person("diana.chen", "Diana", "Chen", "America/New_York", "morgan.blake"),
    Person("rachel.adams", "Rachel", "Adams", "America/New_York", "morgan.blake", ("Finance",)),
    Person(
        ADMIN_USERNAME,
        "Pat",
        "Morgan",
        "UTC",
        "diana.chen",
        ("Cloud Ops",),
        persona="Administrator: Privileged Role Administrator, Owner of everything",
    ),
    Person(
        "approver",
        "Alex",
        "Rivera",
        "America/New_York",
        "diana.chen",
        ("Security Team",),
        persona="Approver: approves Global Administrator activations",
    ),
    Person("lars.becker", "Lars", "Becker", "Europe/Berlin", "diana.chen"),
    Person(
        "engineer",
        "Erin",
        "Walsh",
        "Europe/Berlin",
        "lars.becker",
        ("Platform Engineering",),
        persona="Eligible engineer: eligible for directory and resource roles",
    ),
    Person(
        "reader",
        "Sam",
        "Okafor",
        "Europe/London",
        "rachel.adams",
        persona="Security reader: IT auditor who may look at everything",
    ),
    Person(
        "jonas.weber", "Jonas", "Weber", "Europe/Berlin", "lars.becker", ("Platform Engineering",)
    ),
    Person("priya.nair", "Priya", "Nair", "Asia/Kolkata", "lars.becker", ("Platform Engineering",)),
    Person(
        "sofia.costa", "Sofia", "Costa", "Europe/Lisbon", "lars.becker", ("Platform Engineering",)
    ),
    Person("ivan.novak", "Ivan", "Novak", "Europe/Prague", "lars.becker"),
    Person("kenji.sato", "Kenji", "Sato", "Asia/Tokyo", ADMIN_USERNAME, ("Cloud Ops",)),
    Person("yuki.tanaka", "Yuki", "Tanaka", "Asia/Tokyo", ADMIN_USERNAME, ("Cloud Ops",)),
    Person("marco.rossi", "Marco", "Rossi", "Europe/Rome", ADMIN_USERNAME, ("Cloud Ops",)),
    Person("grace.kim", "Grace", "Kim", "America/Los_Angeles", ADMIN_USERNAME, ("Helpdesk",)),
    Person("luis.garcia", "Luis", "García", "America/New_York", "grace.kim", ("Helpdesk",)),
    Person("hannah.schmidt", "Hannah", "Schmidt", "Europe/Berlin", "grace.kim", ("Helpdesk",)),
    Person("chloe.martin", "Chloé", "Martin", "Europe/Paris", "grace.kim", ("Helpdesk",)),
    Person("nina.petrova", "Nina", "Petrova", "Europe/Berlin", "approver", ("Security Team",)),
    Person("omar.haddad", "Omar", "Haddad", "UTC", "approver", ("Security Team",)),
    Person("ben.carter", "Ben", "Carter", "America/Chicago", "rachel.adams", ("Finance",)),
    Person("mei.lin", "Mei", "Lin", "Asia/Singapore", "rachel.adams", ("Finance",)),
    Person("olivia.brown", "Olivia", "Brown", "Europe/London", "rachel.adams", ("Finance",)),
    Person("breakglass", "Emergency", "Access", "UTC"),
]

GROUPS = ["Cloud Ops", "Security Team", "Helpdesk", "Finance", "Platform Engineering"]

# (name, kind, parent name); the parent comes first. Resource names are their slugs.
SCOPES = [
    ("Contoso", ScopeKind.MANAGEMENT_GROUP, None),
    ("Production", ScopeKind.SUBSCRIPTION, "Contoso"),
    ("Development", ScopeKind.SUBSCRIPTION, "Contoso"),
    ("rg-web-prod", ScopeKind.RESOURCE_GROUP, "Production"),
    ("rg-data-prod", ScopeKind.RESOURCE_GROUP, "Production"),
    ("rg-web-dev", ScopeKind.RESOURCE_GROUP, "Development"),
    ("rg-sandbox", ScopeKind.RESOURCE_GROUP, "Development"),
    ("web-vm-01", ScopeKind.RESOURCE, "rg-web-prod"),
    ("web-vm-02", ScopeKind.RESOURCE, "rg-web-prod"),
    ("agw-prod", ScopeKind.RESOURCE, "rg-web-prod"),
    ("sql-prod-01", ScopeKind.RESOURCE, "rg-data-prod"),
    ("kv-prod", ScopeKind.RESOURCE, "rg-data-prod"),
    ("web-vm-dev-01", ScopeKind.RESOURCE, "rg-web-dev"),
    ("sandbox-vm-01", ScopeKind.RESOURCE, "rg-sandbox"),
]

PERSONAS = [person for person in PEOPLE if person.persona]


def is_seeded() -> bool:
    return get_user_model().objects.filter(username=ADMIN_USERNAME, email=ADMIN_EMAIL).exists()


class Command(BaseCommand):
    help = (
        "Seed the demo organization Contoso (users, groups, resources, role settings and "
        "assignments). Safe to run again: an existing seed is kept and the logins printed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", default="", help="Where the portal runs, for the hint (default SITE_URL)."
        )

    def handle(self, *args, url="", **options):
        url = (url or settings.SITE_URL).rstrip("/") + "/"
        User = get_user_model()
        if is_seeded():
            self.stdout.write("The demo organization Contoso is already seeded.")
        elif (
            Assignment.objects.exists()
            or User.objects.filter(username__in=[p.username for p in PEOPLE]).exists()
        ):
            self.stdout.write(
                self.style.WARNING(
                    "This portal already holds role assignments or users with the demo's "
                    "usernames: not adding the demo organization to it."
                )
            )
            return
        else:
            # Demo people have real-looking addresses: never mail them while seeding.
            with override_settings(EMAIL_BACKEND=LOCMEM), transaction.atomic():
                counts = Seeder(self.stdout).run()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded Contoso: {counts['users']} users, {counts['groups']} groups, "
                    f"{counts['scopes']} scopes, {counts['assignments']} assignments."
                )
            )
        self.print_logins(url)

    def print_logins(self, url: str) -> None:
        rows = [("username", "name", "who")] + [
            (person.username, f"{person.first} {person.last}", person.persona)
            for person in PERSONAS
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(2)]
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"Demo logins (password for everyone: {DEMO_PASSWORD})"))
        for username, name, who in rows:
            out.write(f"  {username.ljust(widths[0])}  {name.ljust(widths[1])}  {who}")
        out.write("Every other Contoso user (e.g. diana.chen) signs in with the same password.")
        out.write(self.style.SUCCESS(f"Open {url} and sign in."))
        out.write("")


class Seeder:
    """Builds the organization. Runs inside one transaction: all of it or nothing."""

    def __init__(self, stdout):
        self.stdout = stdout
        self.now = timezone.now()
        self.users = {}
        self.groups = {}
        self.scopes = {}
        self.roles = {role.name: role for role in Role.objects.all()}

    def run(self) -> dict:
        call_command(
            "bootstrap",
            username=ADMIN_USERNAME,
            password=DEMO_PASSWORD,
            email=ADMIN_EMAIL,
            noinput=True,
            owner=True,  # the administrator also manages every resource
            stdout=self.stdout,
        )
        self.create_people()
        self.create_scopes()
        self.admin = self.users[ADMIN_USERNAME]
        self.configure_roles()
        self.assign_roles()
        self.request_activations()
        self.create_reviews()
        # What the alerts find in the demo, at once rather than at the first periodic scan.
        alert_services.scan(alert_services.SCAN_ACTOR)
        return {
            "users": len(self.users),
            "groups": len(self.groups),
            "scopes": len(self.scopes) - 1,  # not counting the root
            "assignments": Assignment.objects.count(),
        }

    def create_people(self) -> None:
        User = get_user_model()
        password = make_password(DEMO_PASSWORD)  # hashed once: 25 hashes would take seconds
        self.groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
        for person in PEOPLE:
            user = User.objects.filter(username=person.username).first() or User(
                username=person.username, password=password
            )
            user.first_name, user.last_name = person.first, person.last
            user.display_name = f"{person.first} {person.last}"
            if person.username == "breakglass":
                user.display_name = "Emergency Access (break glass)"
                user.is_emergency_access = True
            user.email = f"{_ascii(person.first)}.{_ascii(person.last)}@{DOMAIN}".lower()
            user.time_zone = person.time_zone
            user.manager = self.users[person.manager] if person.manager else None
            user.save()
            user.groups.add(*(self.groups[name] for name in person.groups))
            self.users[person.username] = user

    def create_scopes(self) -> None:
        root = Scope.objects.root()
        for name, kind, parent in SCOPES:
            self.scopes[name] = Scope.objects.create(
                name=name,
                slug=name.lower(),
                kind=kind,
                parent=self.scopes[parent] if parent else root,
            )
        self.scopes["/"] = root

    def configure_roles(self) -> None:
        policy = services.policy_update
        admin, users = self.admin, self.users
        # Global Administrator: activation needs the approver's yes; break-glass is permanent.
        policy(
            actor=admin,
            role=self.roles["Global Administrator"],
            values={
                "require_approval": True,
                "activation_max_duration": timedelta(hours=4),
                "allow_permanent_active": True,
                "allow_permanent_eligible": True,
            },
            approver_users=[users["approver"]],
        )
        policy(
            actor=admin,
            role=self.roles["Security Administrator"],
            values={"allow_permanent_eligible": True},
        )
        policy(
            actor=admin,
            role=self.roles["Security Reader"],
            values={"allow_permanent_active": True, "allow_permanent_eligible": True},
        )
        policy(
            actor=admin,
            role=self.roles["Reader"],
            values={"allow_permanent_active": True, "require_mfa_on_activation": False},
        )
        # Owner of Production: activating it needs a change ticket.
        policy(
            actor=admin,
            role=self.roles["Owner"],
            scope=self.scopes["Production"],
            values={
                "require_ticket_on_activation": True,
                "activation_max_duration": timedelta(hours=2),
            },
        )
        # Development is relaxed: longer activations without MFA.
        policy(
            actor=admin,
            role=self.roles["Contributor"],
            scope=self.scopes["Development"],
            values={
                "require_mfa_on_activation": False,
                "activation_max_duration": timedelta(hours=12),
            },
        )

    def assign_roles(self) -> None:
        u, g, s = self.users, self.groups, self.scopes
        days = self.days
        UAA = "User Access Administrator"  # noqa: N806
        plan = [
            # principal, role, scope, kind, end (None = permanent), justification
            (u["breakglass"], "Global Administrator", None, ACTIVE, None, "Break-glass account"),
            (u["diana.chen"], "Global Administrator", None, ELIGIBLE, None, "CTO"),
            (u["engineer"], "Global Administrator", None, ELIGIBLE, days(90), "Tenant migration"),
            (u["lars.becker"], "Privileged Role Administrator", None, ELIGIBLE, days(180), ""),
            (g["Security Team"], "Security Administrator", None, ELIGIBLE, None, "Security team"),
            (u["engineer"], "Security Administrator", None, ELIGIBLE, days(180), "On-call"),
            (u["approver"], "Security Administrator", None, ACTIVE, days(90), "CISO"),
            (u["reader"], "Security Reader", None, ACTIVE, None, "Internal IT audit"),
            (u["omar.haddad"], "Global Reader", None, ACTIVE, days(60), "Compliance review Q3"),
            (g["Helpdesk"], "Helpdesk Administrator", None, ELIGIBLE, days(365), "Helpdesk"),
            (u["grace.kim"], "Helpdesk Administrator", None, ACTIVE, days(30), "Helpdesk lead"),
            (u["grace.kim"], "User Administrator", None, ELIGIBLE, days(180), "Onboarding"),
            (g["Finance"], "Billing Administrator", None, ELIGIBLE, days(365), "Invoices"),
            (u["rachel.adams"], "Billing Administrator", None, ACTIVE, days(90), "CFO"),
            (g["Platform Engineering"], "Application Administrator", None, ELIGIBLE, days(180), ""),
            # Resource roles at several scopes.
            (g["Cloud Ops"], "Owner", s["Production"], ELIGIBLE, days(180), "Cloud operations"),
            (u["lars.becker"], "Owner", s["Development"], ACTIVE, days(90), "Head of platform"),
            (u["engineer"], "Owner", s["Production"], ELIGIBLE, days(90), "Release manager"),
            (u["engineer"], "Contributor", s["Production"], ELIGIBLE, days(180), "Deployments"),
            (g["Platform Engineering"], "Contributor", s["Production"], ELIGIBLE, days(180), ""),
            (g["Platform Engineering"], "Contributor", s["Development"], ACTIVE, days(90), "Dev"),
            (u["marco.rossi"], "Contributor", s["Production"], ELIGIBLE, days(180), "Ops"),
            (u["ivan.novak"], "Contributor", s["Development"], ACTIVE, days(14), "Contractor"),
            (u["sofia.costa"], "Contributor", s["rg-sandbox"], ACTIVE, days(30), "Experiments"),
            (u["kenji.sato"], UAA, s["rg-data-prod"], ELIGIBLE, days(90), "Database access"),
            (u["yuki.tanaka"], "Contributor", s["sql-prod-01"], ELIGIBLE, days(60), "DBA"),
            (u["omar.haddad"], "Reader", s["kv-prod"], ELIGIBLE, days(30), "Key rotation audit"),
            (g["Finance"], "Reader", s["Production"], ACTIVE, None, "Cost reports"),
            (g["Security Team"], "Reader", s["Contoso"], ACTIVE, None, "Security monitoring"),
        ]
        for principal, role_name, scope, kind, end, justification in plan:
            self.assign(principal, role_name, scope, kind, end, justification or "Demo data")
        # One that starts next week (scheduled) and one that was removed (history).
        self.assign(
            u["ivan.novak"],
            "Security Reader",
            None,
            ELIGIBLE,
            days(37),
            "Pen test engagement",
            start=days(7),
        )
        marco = Assignment.objects.get(principal_user=u["marco.rossi"], role__name="Contributor")
        services.assignment_remove(
            actor=self.admin, assignment=marco, justification="Moved to the Helpdesk team"
        )

    def request_activations(self) -> None:
        """Two people used their eligibility: one is active now, one waits for the approver."""
        u = self.users
        for username, role_name, hours, justification in [
            ("lars.becker", "Privileged Role Administrator", 4, "Onboard the new platform team"),
            ("diana.chen", "Global Administrator", 2, "Sign the renewed enterprise agreement"),
        ]:
            eligible = Assignment.objects.get(
                principal_user=u[username], role__name=role_name, kind=ELIGIBLE
            )
            services.request_activate(
                actor=u[username],
                eligible=eligible,
                duration=timedelta(hours=hours),
                justification=justification,
                mfa_verified=True,  # as if they had typed their authenticator's code
            )

    def create_reviews(self) -> None:
        """A quarterly review of directory roles by each person's manager (in progress now,
        so Review access has work in it), and a self-review of Production planned for later."""
        directory = [
            self.roles[name]
            for name in ("Global Administrator", "Privileged Role Administrator", "Security Reader")
        ]
        review_services.review_create(
            actor=self.admin,
            name="Quarterly review of directory roles",
            description="Managers confirm that their reports still need their admin roles.",
            roles=directory,
            reviewer_type=ReviewerType.MANAGER,
            reviewer_users=[self.admin],  # the fallback for people without a manager
            group_handling=GroupHandling.MEMBERS,
            time_zone=self.admin.time_zone,
            duration_days=14,
            recurrence=Recurrence.QUARTERLY,
            default_decision=DefaultDecision.RECOMMENDATION,
            notify_emails=[ADMIN_EMAIL],
        )
        review_services.review_create(
            actor=self.admin,
            name="Production access: self-review",
            description="Everyone with access to Production confirms they still need it.",
            roles=[self.roles["Contributor"], self.roles["Owner"], self.roles["Reader"]],
            scope=self.scopes["Production"],
            reviewer_type=ReviewerType.SELF,
            time_zone=self.admin.time_zone,
            start=self.days(7),
            duration_days=7,
            auto_apply=True,
        )

    def days(self, n: int):
        return self.now + timedelta(days=n)

    def assign(self, principal, role_name, scope, kind, end, justification, start=None):
        services.assignment_create(
            actor=self.admin,
            principals=[principal],
            role=self.roles[role_name],
            scope=scope,
            kind=kind,
            start=start,
            end=end,
            justification=justification,
            notify=False,
        )


def _ascii(name: str) -> str:
    """'Chloé' → 'Chloe', for e-mail addresses."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
