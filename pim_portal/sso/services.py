"""Single sign-on's changes: the account of a verified identity, its groups, the audit.

A person is matched by the provider's (issuer, subject), never by username or e-mail: an
existing local account with the same username or e-mail is not taken over (the sign-in is
refused until an administrator links or renames it), and a username taken by another account is
made unique instead. Groups in the groups claim become portal groups (source oidc, matched by
their claim value); the person joins the ones in the claim and leaves the oidc groups no longer
in it, through the m2m, so that leaving a group ends the activations it gave (the receiver in
assignments does that, audited). Local and SCIM groups are never touched.
"""

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q

from audit import log as audit_log
from pim_portal import signin_mfa
from pim_portal.actor import Actor
from pim_portal.models import GroupIdentity, Source
from pim_portal.sso.claims import USERNAME_MAX, Identity
from pim_portal.sso.refusals import SignInRefused

SSO_SIGNIN = "pim.security.sso_signin"
SSO_FAILED = "pim.security.sso_failed"
SINGLE_SIGN_ON = Actor.system("single sign-on")
GROUP_NAME_MAX = 150
# Sign-in MFA: done by the provider (its amr/acr count), asked by the portal next, not needed.
MFA_BY_PROVIDER, MFA_BY_PORTAL, MFA_NOT_REQUIRED = "provider", "portal", "not_required"

User = get_user_model()


@dataclass
class SignIn:
    """The outcome of a verified identity: the account and what changed on it."""

    user: object
    mfa: str = MFA_NOT_REQUIRED
    created: bool = False
    linked: str = ""
    changed: dict = field(default_factory=dict)
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)


def sso_user_sign_in(*, identity: Identity) -> SignIn:
    """The account for a verified identity, found by (issuer, subject), linked, or created;
    its name, e-mail and groups brought in line with the claims; the sign-in audited.

    Raises SignInRefused (and changes nothing) for an account taken over, an account not
    allowed to be created, or a deactivated account. The outcome's `mfa` says what sign-in
    MFA is: done by the provider (OIDC_MFA_AMR/OIDC_MFA_ACR), asked by the portal next (the
    caller's to do), or not needed.
    """
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .filter(oidc_issuer=identity.issuer, oidc_subject=identity.subject)
            .first()
        )
        outcome = SignIn(user=user)
        if user is None:
            outcome = _link_or_create(identity)
            user = outcome.user
        if not user.is_active:
            raise SignInRefused("user_inactive", f"{user.get_username()} is inactive", user=user)
        outcome.changed = _update_from_claims(user, identity)
        if identity.groups is not None:
            outcome.groups_added, outcome.groups_removed = _groups_sync(user, identity.groups)
            if outcome.groups_added or outcome.groups_removed:
                audit_log.record(
                    action="pim.user.changed",
                    actor=SINGLE_SIGN_ON,
                    target=user,
                    principal=user,
                    after={
                        "groups_added": outcome.groups_added,
                        "groups_removed": outcome.groups_removed,
                    },
                    message=f"{user}'s groups follow the identity provider's groups claim"
                    + _membership_words(outcome.groups_added, outcome.groups_removed)
                    + ".",
                )
        if identity.mfa_by_provider:
            outcome.mfa = MFA_BY_PROVIDER
        elif signin_mfa.signin_mfa_required(user):
            outcome.mfa = MFA_BY_PORTAL
        audit_log.record(
            action=SSO_SIGNIN,
            actor=user,
            target=user,
            principal=user,
            after={
                "issuer": identity.issuer,
                "subject": identity.subject,
                "amr": list(identity.amr),
                "acr": identity.acr,
                "mfa": outcome.mfa,
                "created": outcome.created,
                **({"linked": outcome.linked} if outcome.linked else {}),
                **({"changed": outcome.changed} if outcome.changed else {}),
                "groups_added": outcome.groups_added,
                "groups_removed": outcome.groups_removed,
            },
            message=f"{user} signed in with single sign-on (subject {identity.subject}).",
        )
    return outcome


def sso_sign_in_failed(*, refusal: SignInRefused, identity: Identity | None = None) -> None:
    """Audit a refused single sign-on: the reason code, and whatever is known of who it was."""
    after = {"reason": refusal.reason}
    if refusal.detail:
        after["detail"] = refusal.detail[:500]
    if identity is not None:
        after.update(issuer=identity.issuer, subject=identity.subject, username=identity.username)
    user = refusal.user
    audit_log.record(
        action=SSO_FAILED,
        actor=SINGLE_SIGN_ON,
        target=user,
        principal=user or "",
        after=after,
        message=f"Single sign-on refused ({refusal.reason})"
        + (f" for {user}" if user is not None else "")
        + (f": {refusal.detail}" if refusal.detail else "")
        + ".",
    )


def _membership_words(added: list[str], removed: list[str]) -> str:
    words = []
    if added:
        words.append(f"added to {', '.join(added)}")
    if removed:
        words.append(f"removed from {', '.join(removed)}")
    return f" ({'; '.join(words)})" if words else ""


# --- The account --------------------------------------------------------------------------


def _link_or_create(identity: Identity) -> SignIn:
    if settings.OIDC_LINK_SCIM_USERS:
        # The same organization provisions by SCIM and signs in by OIDC: its SCIM account is
        # the person's account (matched once by userName, then by subject).
        scim = list(
            User.objects.select_for_update().filter(
                source=Source.SCIM, oidc_subject="", username__iexact=identity.username
            )[:2]
        )
        if len(scim) == 1:
            user = scim[0]
            user.oidc_issuer, user.oidc_subject = identity.issuer, identity.subject
            user.save(update_fields=["oidc_issuer", "oidc_subject"])
            return SignIn(user=user, linked="scim account")
    taken = Q(username__iexact=identity.username)
    if identity.email:
        taken |= Q(email__iexact=identity.email)
    local = User.objects.filter(taken, source=Source.LOCAL, oidc_subject="").first()
    if local is not None:
        same = "username" if local.username.lower() == identity.username.lower() else "e-mail"
        raise SignInRefused(
            "account_conflict",
            f"the local account {local.get_username()!r} has the same {same}; "
            "it is not linked to this identity provider",
            user=local,
        )
    if not settings.OIDC_CREATE_USERS:
        raise SignInRefused("no_account", "OIDC_CREATE_USERS is off")
    user = User(
        username=_unique_username(identity.username),
        email=identity.email,
        display_name=identity.display_name,
        source=Source.OIDC,
        oidc_issuer=identity.issuer,
        oidc_subject=identity.subject,
    )
    user.set_unusable_password()  # signs in through the provider only
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # The same person's other tab signed in at the same moment: that account is theirs.
        twin = User.objects.filter(oidc_issuer=identity.issuer, oidc_subject=identity.subject)
        if twin.exists():
            return SignIn(user=twin.select_for_update().get())
        raise SignInRefused(
            "claims_invalid", "the account could not be created; try again"
        ) from None
    audit_log.record(
        action="pim.user.created",
        actor=SINGLE_SIGN_ON,
        target=user,
        principal=user,
        after={
            "username": user.username,
            "display_name": user.display_name,
            "email": user.email,
            "source": user.source,
            "oidc_issuer": user.oidc_issuer,
            "oidc_subject": user.oidc_subject,
        },
        message=f"{user} created at their first single sign-on.",
    )
    return SignIn(user=user, created=True)


def _username_taken(username: str, exclude_pk=None) -> bool:
    others = User.objects.filter(username__iexact=username)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.exists()


def _unique_username(wanted: str, exclude_pk=None) -> str:
    """The wanted username, or the first free `wanted-2`, `wanted-3`... (never another's)."""
    if not _username_taken(wanted, exclude_pk):
        return wanted
    for number in range(2, 1000):
        suffix = f"-{number}"
        candidate = wanted[: USERNAME_MAX - len(suffix)] + suffix
        if not _username_taken(candidate, exclude_pk):
            return candidate
    raise SignInRefused("claims_invalid", f"no free username like {wanted!r}")


def _update_from_claims(user, identity: Identity) -> dict:
    """Name, e-mail and username from the claims; what changed, as {field: [old, new]}.
    A SCIM account's fields are SCIM's: single sign-on leaves them alone."""
    if user.source == Source.SCIM:
        return {}
    wanted = {}
    if identity.display_name:
        wanted["display_name"] = identity.display_name
    if identity.email:
        wanted["email"] = identity.email
    if user.username != identity.username:
        # A username made unique earlier (`alice-2`) stays while `alice` is still taken.
        kept = re.fullmatch(re.escape(identity.username) + r"-\d+", user.username)
        if not (kept and _username_taken(identity.username, user.pk)):
            wanted["username"] = _unique_username(identity.username, user.pk)
    changed = {
        name: [getattr(user, name), value]
        for name, value in wanted.items()
        if getattr(user, name) != value
    }
    if changed:
        for name, (_, value) in changed.items():
            setattr(user, name, value)
        user.save(update_fields=list(changed))
    return changed


# --- Groups -------------------------------------------------------------------------------


def _groups_sync(user, values: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The user joins the groups of the claim and leaves the oidc groups not in it."""
    wanted = _groups_for_claim(values)
    member_of = set(user.groups.values_list("pk", flat=True))
    oidc_member_of = {
        group.pk: group
        for group in Group.objects.filter(user=user, identity__source=Source.OIDC).order_by("name")
    }
    to_add = [group for group in wanted if group.pk not in member_of]
    wanted_pks = {group.pk for group in wanted}
    to_remove = [group for pk, group in oidc_member_of.items() if pk not in wanted_pks]
    if to_add:
        user.groups.add(*to_add)
    if to_remove:
        # Through the m2m: the receiver ends the activations these groups gave (audited).
        user.groups.remove(*to_remove)
    return sorted(group.name for group in to_add), sorted(group.name for group in to_remove)


def _groups_for_claim(values: tuple[str, ...]) -> list[Group]:
    """The oidc groups for the claim's values, made for values seen the first time."""
    known: dict[str, Group] = {}
    identities = (
        GroupIdentity.objects.filter(source=Source.OIDC, claim_value__in=values)
        .select_related("group")
        .order_by("pk")
    )
    for identity in identities:
        known.setdefault(identity.claim_value, identity.group)
    return [known.get(value) or _group_create(value) for value in values]


def _group_create(value: str) -> Group:
    """A new oidc group for a claim value, named after it (a name taken by a local or SCIM
    group gets " (single sign-on)", then a number: that group is not this one)."""
    base = value[:GROUP_NAME_MAX]
    candidates = [base, f"{value[: GROUP_NAME_MAX - 18]} (single sign-on)"]
    candidates += [f"{value[: GROUP_NAME_MAX - 22]} (single sign-on {n})" for n in range(2, 50)]
    for name in candidates:
        if Group.objects.filter(name=name).exists():
            continue
        try:
            with transaction.atomic():
                group = Group.objects.create(name=name)
                GroupIdentity.objects.create(group=group, source=Source.OIDC, claim_value=value)
        except IntegrityError:
            # Another sign-in made it at the same moment: use theirs if it is this claim's.
            same = GroupIdentity.objects.filter(source=Source.OIDC, claim_value=value).first()
            if same is not None:
                return same.group
            continue
        audit_log.record(
            action="pim.group.created",
            actor=SINGLE_SIGN_ON,
            target=group,
            principal=group,
            after={"name": group.name, "source": Source.OIDC, "claim_value": value},
            message=f"Group {group} created from the identity provider's groups claim.",
        )
        return group
    raise SignInRefused("claims_invalid", f"no free group name for the claim value {value!r}")
