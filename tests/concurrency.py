"""Running calls at the same moment, for the race tests (PostgreSQL, real transactions)."""

import threading

from django.db import connection


def race(*calls) -> list:
    """Run the calls at the same moment, each in its own thread and database connection.

    Returns each call's result, or the exception it raised: the loser's refusal is a result too.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            connection.ensure_connection()  # connect first, so the racers start together
            barrier.wait()
            results[index] = call()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung (deadlock?)"
    return results
