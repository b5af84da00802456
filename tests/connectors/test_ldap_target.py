"""The LDAP group connector against a real slapd; the server is read back with `ldapsearch`."""

import logging
import socket
import time

import pytest
from django.contrib.auth import get_user_model

from connectors.targets import KINDS
from connectors.targets.base import Connection, TargetError
from connectors.targets.ldap import LdapGroups, LdapOptionsForm
from tests.connectors.ldap_server import (
    ADMIN_DN,
    ADMIN_PASSWORD,
    BASE,
    GROUPS,
    PEOPLE,
    PLACEHOLDER,
    READER_DN,
    READER_PASSWORD,
    USERS,
    free_port,
)

ALICE, BOB, CAROL = (USERS[name][0] for name in ("alice", "bob", "carol"))
TEMPLATE = {"user_dn_template": f"uid={{username}},{PEOPLE}"}
SEARCH = {"user_search_base": PEOPLE, "user_search_filter": "(uid={username})"}


def target(slapd, *, user=ADMIN_DN, password=ADMIN_PASSWORD, port=None, timeout=5.0, **options):
    options = options or dict(TEMPLATE)
    return LdapGroups(Connection("127.0.0.1", port or slapd.port, user, password, options, timeout))


def portal_user(username: str):
    return get_user_model()(username=username)  # unsaved: the target only reads its username


def test_kind_is_registered():
    assert KINDS["ldap"] is LdapGroups
    assert LdapGroups.label == "LDAP group membership"
    assert LdapGroups.object_label == "Group DN"


# Membership


def test_grant_adds_the_users_dn_to_the_group(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL)
    with target(slapd) as ldap:
        ldap.grant(group, ALICE)
    assert ldap_members(group) == {CAROL, ALICE}


def test_revoke_removes_the_users_dn_from_the_group(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL, ALICE)
    with target(slapd) as ldap:
        ldap.revoke(group, ALICE)
    assert ldap_members(group) == {CAROL}


def test_granting_a_member_again_changes_nothing(slapd, ldap_group):
    group = ldap_group(CAROL, ALICE)
    with target(slapd) as ldap:
        ldap.grant(group, ALICE)
        ldap.grant(group, ALICE.upper())
    assert slapd.values(group, "member") == [CAROL, ALICE]


def test_revoking_someone_not_in_the_group_changes_nothing(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL)
    with target(slapd) as ldap:
        ldap.revoke(group, ALICE)
        ldap.revoke(group, ALICE)
    assert ldap_members(group) == {CAROL}


def test_a_grant_the_server_finds_already_done_is_not_an_error(slapd, ldap_group, ldap_members):
    # `userid` is an alias of `uid` that only the server knows: the read misses the member,
    # the change is made, and the server answers attributeOrValueExists.
    group = ldap_group(ALICE)
    with target(slapd) as ldap:
        ldap.grant(group, f"userid=alice,{PEOPLE}")
    assert ldap_members(group) == {ALICE}


def test_members_are_the_dns_in_the_group(slapd, ldap_group):
    group = ldap_group(ALICE, BOB)
    with target(slapd) as ldap:
        assert ldap.members(group) == {ALICE, BOB}


def test_is_member_compares_dns_without_case_or_spaces(slapd, ldap_group):
    group = ldap_group(ALICE)
    with target(slapd) as ldap:
        assert ldap.is_member(group, "UID=Alice, OU=People, DC=Contoso, DC=Example")
        assert not ldap.is_member(group, BOB)


def test_revoke_with_a_dn_in_another_case_removes_the_stored_value(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL, ALICE)
    with target(slapd) as ldap:
        ldap.revoke(group, ALICE.upper())
    assert ldap_members(group) == {CAROL}


def test_group_of_unique_names_uses_unique_member(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL, object_class="groupOfUniqueNames")
    with target(slapd, member_attribute="uniqueMember", **TEMPLATE) as ldap:
        ldap.grant(group, ALICE)
        assert ldap_members(group, "uniqueMember") == {CAROL, ALICE}
        assert ldap.members(group) == {CAROL, ALICE}
        ldap.revoke(group, CAROL)
    assert ldap_members(group, "uniqueMember") == {ALICE}


# The placeholder member of groups that may not be empty


def test_revoking_the_last_member_leaves_the_placeholder(slapd, ldap_group, ldap_members):
    group = ldap_group(ALICE)
    with target(slapd, placeholder_member=PLACEHOLDER, **TEMPLATE) as ldap:
        ldap.revoke(group, ALICE)
        assert ldap.members(group) == set()
    assert ldap_members(group) == {PLACEHOLDER}


def test_members_never_list_the_placeholder(slapd, ldap_group):
    group = ldap_group(PLACEHOLDER, ALICE)
    with target(slapd, placeholder_member=PLACEHOLDER.upper(), **TEMPLATE) as ldap:
        assert ldap.members(group) == {ALICE}
        ldap.grant(group, BOB)
        assert ldap.members(group) == {ALICE, BOB}


def test_revoking_the_last_member_without_a_placeholder_says_to_set_one(
    slapd, ldap_group, ldap_members
):
    group = ldap_group(ALICE)
    with target(slapd) as ldap, pytest.raises(TargetError) as refused:
        ldap.revoke(group, ALICE)
    assert str(refused.value) == (
        f"{group} cannot lose its last member: "
        "set a placeholder member DN in the connector's options"
    )
    assert ldap_members(group) == {ALICE}


# Accounts


def test_account_of_fills_the_template_with_the_username_escaped(slapd):
    with target(slapd) as ldap:
        assert ldap.account_of(portal_user("smith, john")) == f"uid=smith\\, john,{PEOPLE}"


def test_account_of_by_template_is_none_without_an_entry(slapd):
    with target(slapd) as ldap:
        assert ldap.account_of(portal_user("ghost")) is None


def test_account_of_by_search_is_the_dn_found(slapd):
    with target(slapd, **SEARCH) as ldap:
        assert ldap.account_of(portal_user("alice")) == ALICE
        # The DN as the server writes it (OpenLDAP escapes a comma as \2C).
        assert ldap.account_of(portal_user("smith, john")) == f"uid=smith\\2C john,{PEOPLE}"


def test_account_of_by_search_escapes_the_username_in_the_filter(slapd):
    with target(slapd, **SEARCH) as ldap:
        assert ldap.account_of(portal_user("*")) is None
        assert ldap.account_of(portal_user("al*")) is None
        assert ldap.account_of(portal_user("alice)(uid=*")) is None


def test_account_of_by_search_is_none_when_nothing_matches(slapd):
    with target(slapd, **SEARCH) as ldap:
        assert ldap.account_of(portal_user("ghost")) is None


def test_account_of_by_search_under_a_missing_base_says_so(slapd):
    options = {**SEARCH, "user_search_base": f"ou=staff,{BASE}"}
    with target(slapd, **options) as ldap, pytest.raises(TargetError) as failed:
        ldap.account_of(portal_user("alice"))
    assert str(failed.value) == f"no entry ou=staff,{BASE} (the user search base)"


def test_account_of_by_search_matching_several_entries_says_so(slapd):
    options = {**SEARCH, "user_search_filter": "(|(uid={username})(uid=bob))"}
    with target(slapd, **options) as ldap, pytest.raises(TargetError) as failed:
        ldap.account_of(portal_user("alice"))
    assert str(failed.value).startswith(f"more than one entry under {PEOPLE} matches")


def test_username_of_reads_the_template_backwards(slapd):
    with target(slapd) as ldap:
        assert ldap.username_of(ALICE) == "alice"
        assert ldap.username_of(f"UID=smith\\2c john,OU=People,{BASE}") == "smith, john"
        assert ldap.username_of(f"uid=alice,ou=staff,{BASE}") is None
        assert ldap.username_of(f"cn=alice,{PEOPLE}") is None
        assert ldap.username_of("not a dn") is None


def test_username_of_with_a_template_around_the_username(slapd):
    with target(slapd, user_dn_template=f"cn=adm-{{username}},{PEOPLE}") as ldap:
        assert ldap.username_of(f"cn=ADM-alice,{PEOPLE}") == "alice"
        assert ldap.username_of(f"cn=alice,{PEOPLE}") is None
        assert ldap.username_of(f"cn=adm-,{PEOPLE}") is None


def test_username_of_by_search_reads_the_username_attribute(slapd):
    with target(slapd, **SEARCH) as ldap:
        assert ldap.username_of(USERS["erin"][0]) == "erin"
        assert ldap.username_of(f"uid=ghost,{PEOPLE}") is None
        assert ldap.username_of(READER_DN) is None  # outside the search base


def test_active_directory_flavour_finds_users_by_another_attribute(slapd, ldap_group, ldap_members):
    # As in AD: users named by their full name, found by an attribute (sAMAccountName there).
    erin = USERS["erin"][0]
    options = {
        "member_attribute": "member",
        "user_search_base": PEOPLE,
        "user_search_filter": "(&(objectClass=inetOrgPerson)(mail={username}))",
        "username_attribute": "mail",
    }
    group = ldap_group(CAROL)
    with target(slapd, **options) as ldap:
        account = ldap.account_of(portal_user("erin@contoso.example"))
        assert account == erin
        ldap.grant(group, account)
        assert ldap_members(group) == {CAROL, erin}
        assert {ldap.username_of(dn) for dn in ldap.members(group)} == {
            "erin@contoso.example",
            "carol@contoso.example",
        }


# Failures an administrator can act on


def test_wrong_password_is_invalid_credentials_and_never_shows_the_password(slapd, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TargetError) as refused:
        target(slapd, password="Wrong-Pa55word").open()
    assert str(refused.value) == f"invalid credentials for {ADMIN_DN}"
    assert "Wrong-Pa55word" not in caplog.text


def test_a_bind_dn_without_a_password_says_so(slapd):
    with pytest.raises(TargetError) as refused:
        target(slapd, password="").open()
    assert str(refused.value) == f"no password for {ADMIN_DN}: set the connector's secret"


def test_a_closed_port_fails_fast(slapd):
    port = free_port()  # nothing listens there now
    started = time.monotonic()
    with pytest.raises(TargetError) as failed:
        target(slapd, port=port).open()
    assert str(failed.value) == f"could not reach ldap://127.0.0.1:{port}: connection refused"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("use_ssl", [False, True], ids=["ldap", "ldaps"])
def test_a_server_that_never_answers_fails_within_the_timeout(slapd, use_ssl):
    scheme = "ldaps" if use_ssl else "ldap"
    with socket.socket() as silent:  # the kernel accepts connections, nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TargetError) as failed:
            target(slapd, port=port, timeout=1.0, use_ssl=use_ssl, **TEMPLATE).open()
        elapsed = time.monotonic() - started
    assert str(failed.value) == f"could not reach {scheme}://127.0.0.1:{port} within 1 s"
    assert 0.9 < elapsed < 1.0 + 3


def test_a_group_that_does_not_exist_is_an_error(slapd):
    missing = f"cn=nothing-here,{GROUPS}"
    with target(slapd) as ldap:
        for call in (ldap.check_object, ldap.members, lambda g: ldap.grant(g, ALICE)):
            with pytest.raises(TargetError) as failed:
                call(missing)
            assert str(failed.value) == f"no group {missing}"


def test_check_object_accepts_a_group_that_exists(slapd, ldap_group):
    group = ldap_group(ALICE)
    with target(slapd) as ldap:
        ldap.check_object(group)


def test_check_object_of_something_that_is_not_a_dn_says_so(slapd):
    with target(slapd) as ldap, pytest.raises(TargetError) as failed:
        ldap.check_object("db-admins")
    assert str(failed.value) == "'db-admins' is not a DN"


def test_granting_a_dn_without_an_entry_says_so(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL)
    ghost = f"uid=ghost,{PEOPLE}"
    with target(slapd) as ldap, pytest.raises(TargetError) as failed:
        ldap.grant(group, ghost)
    assert str(failed.value) == f"no entry {ghost}: the user has no account in the directory"
    assert ldap_members(group) == {CAROL}


def test_a_bind_user_who_may_only_read_is_refused_on_grant(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL)
    with target(slapd, user=READER_DN, password=READER_PASSWORD) as ldap:
        assert ldap.members(group) == {CAROL}  # reading is allowed
        with pytest.raises(TargetError) as refused:
            ldap.grant(group, ALICE)
    assert str(refused.value) == (
        f"{READER_DN} may not add {ALICE} to {group} (insufficient access)"
    )
    assert ldap_members(group) == {CAROL}


def test_a_bind_user_who_may_only_read_is_refused_on_revoke(slapd, ldap_group, ldap_members):
    group = ldap_group(CAROL, ALICE)
    reader = target(slapd, user=READER_DN, password=READER_PASSWORD)
    with reader as ldap, pytest.raises(TargetError) as refused:
        ldap.revoke(group, ALICE)
    assert str(refused.value) == (
        f"{READER_DN} may not remove {ALICE} from {group} (insufficient access)"
    )
    assert ldap_members(group) == {CAROL, ALICE}


def test_close_twice_or_unopened_is_harmless(slapd):
    ldap = target(slapd)
    ldap.close()
    ldap.open()
    ldap.close()
    ldap.close()


# TLS: the server's certificate is always verified


def test_start_tls_refuses_a_certificate_it_cannot_verify(slapd):
    with pytest.raises(TargetError) as failed:
        target(slapd, start_tls=True, **TEMPLATE).open()
    assert str(failed.value) == (
        f"TLS with {slapd.uri} failed: its certificate is not trusted (self-signed certificate); "
        "give the CA certificates file in the options"
    )


def test_start_tls_with_the_servers_ca_works(slapd, ldap_group):
    group = ldap_group(ALICE)
    with target(slapd, start_tls=True, tls_ca_file=slapd.ca_file, **TEMPLATE) as ldap:
        assert ldap.members(group) == {ALICE}


def test_ldaps_with_the_servers_ca_works(slapd, ldap_group):
    group = ldap_group(ALICE)
    options = {"use_ssl": True, "tls_ca_file": slapd.ca_file, **TEMPLATE}
    with target(slapd, port=slapd.ldaps_port, **options) as ldap:
        assert ldap.members(group) == {ALICE}


# The options form

VALID_TEMPLATE = {"member_attribute": "member", "username_attribute": "uid", **TEMPLATE}
VALID_SEARCH = {"member_attribute": "member", "username_attribute": "uid", **SEARCH}


@pytest.mark.parametrize("data", [VALID_TEMPLATE, VALID_SEARCH], ids=["template", "search"])
def test_options_form_accepts_one_way_of_finding_users(data):
    form = LdapOptionsForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["member_attribute"] == "member"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"user_dn_template": ""}, "user_search_base", "Give a search base and a filter"),
        (SEARCH, "user_dn_template", "Use a DN template or a search, not both."),
        ({"user_dn_template": f"uid=alice,{PEOPLE}"}, "user_dn_template", "Put {username} once"),
        ({"user_dn_template": f"uid=x,ou={{username}},{BASE}"}, "user_dn_template", "first RDN"),
        ({"user_dn_template": "uid={username};;"}, "user_dn_template", "is not a DN"),
        ({"placeholder_member": "nobody"}, "placeholder_member", "'nobody' is not a DN"),
        ({"start_tls": "on", "use_ssl": "on"}, "start_tls", "Choose LDAPS or StartTLS"),
        ({"member_attribute": "memberUid"}, "member_attribute", "Select a valid choice"),
        ({"username_attribute": "uid)(x"}, "username_attribute", "Enter a valid value"),
    ],
    ids=[
        "neither",
        "both",
        "no-username",
        "username-in-parent",
        "bad-template",
        "bad-placeholder",
        "tls-twice",
        "member-attribute",
        "username-attribute",
    ],
)
def test_options_form_refuses(changes, field, message):
    form = LdapOptionsForm({**VALID_TEMPLATE, **changes})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


@pytest.mark.parametrize(
    ("search", "message"),
    [("(uid=alice)", "Put {username} in the filter."), ("(uid={username}", "Not an LDAP filter")],
    ids=["no-username", "unbalanced"],
)
def test_options_form_refuses_a_bad_search_filter(search, message):
    form = LdapOptionsForm({**VALID_SEARCH, "user_search_filter": search})
    assert not form.is_valid()
    assert message in " ".join(form.errors["user_search_filter"])
