"""Throttling failed sign-ins (django-axes), per account and per client address.

An account is locked after SIGNIN_FAILURE_LIMIT failures within the cool-off, an address after
SIGNIN_ADDRESS_FAILURE_LIMIT (higher: many people may share one office address). Each attempt
while locked restarts the cool-off, so "try again in N minutes" is exact. The client address
is the portal's own notion of it (`middleware.client_ip`), the same the audit log records.
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_lockout_parameters
from axes.models import AccessAttempt
from django.conf import settings
from django.shortcuts import render

ACCOUNT = "username"
ADDRESS = "ip_address"


def _limit(parameter) -> int:
    if parameter == ADDRESS:
        return settings.SIGNIN_ADDRESS_FAILURE_LIMIT
    return settings.AXES_FAILURE_LIMIT


class SignInThrottle(AxesDatabaseHandler):
    """axes' database handler with a limit of its own for each lockout parameter."""

    def failures_by_parameter(self, request, credentials=None) -> list[tuple[str, int]]:
        parameters = get_lockout_parameters(request, credentials)
        counted = []
        for parameter, attempts in zip(
            parameters, self.get_user_attempts(request, credentials), strict=True
        ):
            failures = sum(attempts.values_list("failures_since_start", flat=True))
            counted.append((parameter, failures))
        return counted

    def locked_parameters(self, request, credentials=None) -> list[str]:
        """Which of the account and the address are at their limit now."""
        return [
            parameter
            for parameter, failures in self.failures_by_parameter(request, credentials)
            if failures >= _limit(parameter)
        ]

    def get_failures(self, request, credentials=None) -> int:
        # axes compares one number with AXES_FAILURE_LIMIT (the account's limit); give it the
        # worst count on that scale, so the address locks at its own limit:
        # floor(failures * account / address) >= account exactly when failures >= address.
        account_limit = settings.AXES_FAILURE_LIMIT
        return max(
            (
                failures * account_limit // _limit(parameter)
                for parameter, failures in self.failures_by_parameter(request, credentials)
            ),
            default=0,
        )

    def reset_user_attempts(self, request, credentials=None) -> int:
        # A successful sign-in clears that account's failures only: were the address's cleared
        # too, one known password would reset the count of a password spray from it.
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count


class SignInThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked account or address before any password is checked.

    A sign-in without a request (the test client's `login()`, a shell) has no client to count
    and is not throttled; every sign-in over HTTP (the login page, the admin's) passes one.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def locked_parameters(request, credentials=None) -> list[str]:
    return AxesProxyHandler.get_implementation().locked_parameters(request, credentials)


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets: plainly why, and for how long (429)."""
    locked = locked_parameters(request, credentials)
    return render(
        request,
        "registration/locked_out.html",
        {
            "account_locked": ACCOUNT in locked or not locked,
            "address_locked": ADDRESS in locked,
            "cool_off": get_cool_off(request),
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
