from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import CheckpointRefused, checkpoint_make, describe, signing_key


class Command(BaseCommand):
    help = "Seal the committed audit events and sign a checkpoint of the chain's head now."

    def handle(self, *args, **options):
        if signing_key() is None:
            raise CommandError(
                "No signing key is configured: set AUDIT_SIGNING_KEY_FILE or "
                "AUDIT_SIGNING_KEY (manage.py audit_keys makes a pair)."
            )
        try:
            made = checkpoint_make()
        except CheckpointRefused as refused:
            raise CommandError(str(refused)) from refused
        if made is None:
            self.stdout.write("No new checkpoint: the chain's head is already signed.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Made the {describe(made)}."))
