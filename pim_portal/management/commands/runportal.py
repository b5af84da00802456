"""Run the web server, the django-q2 worker and the timekeeper together; Ctrl-C stops them."""

import signal
import socket
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
            subprocess.Popen([python, "manage.py", "timekeeper"]),  # noqa: S603
            subprocess.Popen(  # noqa: S603
                [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
            ),
        ]

        def stop(*_):
            for process in processes:
                if process.poll() is None:
                    process.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            self._wait_for_port(host, int(port), processes)
            self._print_logins(url)
            self.stdout.write(self.style.SUCCESS(f"PIM Portal is running at {url}"))
            self.stdout.write(
                "Background worker (django-q2) and timekeeper are running. Ctrl-C stops all.\n"
            )
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

    @staticmethod
    def _wait_for_port(host: str, port: int, processes, seconds: float = 15) -> None:
        """Print the banner after the servers' own start-up lines, not lost among them."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.3)

    def _print_logins(self, url: str) -> None:
        from pim_portal.management.commands import seed_demo

        if seed_demo.is_seeded():
            seed_demo.Command(stdout=self.stdout).print_logins(url)
