from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import chain_verify, describe


class Command(BaseCommand):
    help = (
        "Seal the committed audit events into the hash chain, verify the chain and every "
        "signed checkpoint, record the outcome, and report the first broken link and the "
        "first checkpoint the chain contradicts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint-file",
            help="Also hold the chain to the checkpoints in this JSON-lines file "
            "(default: AUDIT_CHECKPOINT_FILE), e.g. a copy kept off the database host.",
        )

    def handle(self, *args, checkpoint_file=None, **options):
        verified = chain_verify(checkpoint_file=checkpoint_file)  # seals first
        record = verified.record
        if not record.ok:
            if verified.first_contradicted is None and verified.first_forged is None:
                where = f"after {record.checked} good events"
            else:
                where = "against its signed checkpoints"
            raise CommandError(f"Audit chain broken {where}: {record.problem}.")
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {record.checked} events verified.")
        )
        if verified.pruned_up_to:
            self.stdout.write(
                f"Events up to #{verified.pruned_up_to} were pruned by the retention; the chain "
                "starts after them, at their signed prune checkpoint."
            )
        if not verified.configured:
            self.stdout.write(
                "Signed checkpoints are not configured (AUDIT_VERIFY_KEY_FILE, "
                "AUDIT_VERIFY_KEY or a signing key): only the hash chain was verified."
            )
        elif verified.newest is not None:
            self.stdout.write(
                f"Signed checkpoints: {record.checkpoints} verified; the newest is the "
                f"{describe(verified.newest)}."
            )
        else:
            self.stdout.write("Signed checkpoints: none made yet.")
