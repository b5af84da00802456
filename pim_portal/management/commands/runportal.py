"""Run the web server and the django-q2 worker together; Ctrl-C stops both."""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the development web server and the background worker together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host, port, **options):
        python = sys.executable
        url = f"http://{host}:{port}/"
        processes = [
            subprocess.Popen([python, "manage.py", "qcluster"]),  # noqa: S603
            subprocess.Popen(  # noqa: S603
                [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
            ),
        ]
        self.stdout.write(self.style.SUCCESS(f"\nPIM Portal is running at {url}"))
        self.stdout.write("Background worker (django-q2) is running. Press Ctrl-C to stop both.\n")

        def stop(*_):
            for process in processes:
                if process.poll() is None:
                    process.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stdout.write("Stopped.")
