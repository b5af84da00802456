"""Why a single sign-on was refused: a code for the audit log, plain words for the page."""

# code: (HTTP status, what the page says)
REASONS: dict[str, tuple[int, str]] = {
    "disabled": (404, "Single sign-on is not set up here."),
    "provider_error": (400, "The identity provider did not sign you in."),
    "state_replayed": (
        400,
        "This answer from the identity provider was already used. Each one works only once, "
        "so a copied or repeated sign-in link is refused.",
    ),
    "state_unknown": (
        400,
        "This answer from the identity provider does not belong to a sign-in started in this "
        "browser (or it was started too long ago).",
    ),
    "state_expired": (400, "The sign-in took too long to complete."),
    "no_code": (400, "The identity provider's answer is incomplete (it has no code)."),
    "token_exchange_failed": (400, "The identity provider refused to complete the sign-in."),
    "provider_unreachable": (502, "The identity provider could not be reached."),
    "discovery_failed": (502, "The identity provider's configuration could not be read."),
    "bad_token": (400, "The identity provider's answer has no readable ID token."),
    "unexpected_algorithm": (400, "The ID token is signed with an algorithm not accepted here."),
    "bad_signature": (400, "The ID token's signature is not the identity provider's."),
    "wrong_issuer": (400, "The ID token was issued by another identity provider."),
    "wrong_audience": (400, "The ID token was issued for another application, not this portal."),
    "expired": (400, "The ID token has expired."),
    "not_yet_valid": (400, "The ID token is not valid yet (check the clocks)."),
    "claims_missing": (400, "The ID token lacks a claim every ID token must have."),
    "wrong_nonce": (
        400,
        "The ID token was not issued for this sign-in: its nonce does not match the one this "
        "browser sent.",
    ),
    "claims_invalid": (400, "The identity provider's claims about you cannot be used."),
    "account_conflict": (
        403,
        "An account with your username or e-mail address already exists here, and it is not "
        "linked to your organization's sign-in. An administrator must link or rename it first.",
    ),
    "no_account": (
        403,
        "You have no account here, and accounts are not created at single sign-on. Ask an "
        "administrator for one.",
    ),
    "user_inactive": (403, "Your account here is deactivated."),
}


class SignInRefused(Exception):
    """A single sign-on refused. `reason` is a code of REASONS; `detail` says more (for the
    audit log, and on the page when it helps); `user` is the account concerned, if any."""

    def __init__(self, reason: str, detail: str = "", *, user=None, show_detail: bool = False):
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        self.reason = reason
        self.detail = detail
        self.user = user
        self.show_detail = show_detail
        super().__init__(f"{reason}: {detail}" if detail else reason)

    @property
    def status(self) -> int:
        return REASONS[self.reason][0]

    @property
    def message(self) -> str:
        return REASONS[self.reason][1]
