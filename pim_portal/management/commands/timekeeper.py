"""Run the time engine's loop: send workers to due work as soon as it is due."""

from django.core.management.base import BaseCommand

from pim_portal import timekeeper


class Command(BaseCommand):
    help = (
        "Watch the clock: when an assignment's start or end, an approval deadline or other due "
        "work comes, queue it for the django-q2 workers (run beside `qcluster`)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds", type=float, default=None, help="Stop after this long (default: never)."
        )

    def handle(self, *args, seconds, **options):
        names = ", ".join(work.name for work in timekeeper.registered())
        self.stdout.write(f"Timekeeper watching: {names}")
        timekeeper.loop(seconds=seconds)
