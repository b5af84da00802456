import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from assignments.catalog import PRIVILEGED_ROLE_ADMINISTRATOR, SECURITY_ADMINISTRATOR
from assignments.models import Assignment
from assignments.services.administration import assignment_bootstrap

BOOTSTRAP_ROLES = [PRIVILEGED_ROLE_ADMINISTRATOR, SECURITY_ADMINISTRATOR]


class Command(BaseCommand):
    help = (
        "First-run wizard: make a user a permanent active Privileged Role Administrator and "
        "Security Administrator at the directory root, so someone can manage the portal."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", help="The user to create or take.")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Password for a new user (asked if omitted).")
        parser.add_argument(
            "--again", action="store_true", help="Run even though the portal was bootstrapped."
        )
        parser.add_argument("--noinput", action="store_true", help="Never prompt.")
        parser.add_argument(
            "--owner",
            action="store_true",
            help="Also make the user Owner at the directory root, to manage resource roles.",
        )

    def handle(
        self, *args, username=None, email="", password=None, again=False, owner=False, **options
    ):
        interactive = not options["noinput"]
        already = Assignment.objects.filter(
            role__name=PRIVILEGED_ROLE_ADMINISTRATOR,
            created_by__isnull=True,
            ticket_system="bootstrap",
        ).exists()
        if already and not again:
            raise CommandError(
                "This portal has been bootstrapped already. Use --again to bootstrap another user."
            )
        username, user, password = self._who(username, email, password, interactive)
        with transaction.atomic():
            if user is None:
                user = get_user_model().objects.create_user(
                    username=username, email=email, password=password
                )
                self.stdout.write(f"Created user {username}.")
            assignment_bootstrap(
                user=user, role_names=BOOTSTRAP_ROLES + (["Owner"] if owner else [])
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{user.username} is now a permanent active {' and '.join(BOOTSTRAP_ROLES)}"
                + (", and Owner at the directory root." if owner else ".")
            )
        )

    def _who(self, username, email, password, interactive):
        """(username, the existing user or None, the new user's checked password)."""
        if not username:
            if not interactive:
                raise CommandError("--username is required with --noinput.")
            username = input("Username: ").strip()
        if not username:
            raise CommandError("A username is required.")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if password is None:
                if not interactive:
                    raise CommandError("--password is required to create a user with --noinput.")
                password = getpass.getpass("Password for the new user: ")
            if not password:
                raise CommandError("A password is required for a new user.")
            try:
                validate_password(password, User(username=username, email=email))
            except ValidationError as weak:
                raise CommandError(" ".join(weak.messages)) from None
        return username, user, password
