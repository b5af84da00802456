"""What the portal's SCIM service provider declares: the attributes it keeps, its capabilities,
and how tolerant it is of what the big identity providers send.

The schemas published are RFC 7643's, cut down to the attributes the portal stores, so that a
client (and the conformance tester) sees exactly what round-trips: a user's userName, name
(given and family), displayName, one e-mail address, active, externalId, the groups it belongs
to (read-only) and, from the enterprise extension, its manager; a group's displayName,
externalId and members (users).
"""

from functools import cache

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Reference,
    ResourceType,
    SchemaExtension,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.service import ScimService
from scim2_server.utils import load_default_schemas

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

MAX_RESULTS = 1000  # the largest page a list or search returns

# The attributes kept, by schema, each with the sub-attributes kept (None: all of them).
_KEPT = {
    USER_SCHEMA: {
        "userName": None,
        "name": {"givenName", "familyName"},
        "displayName": None,
        "active": None,
        "emails": {"value", "type"},
        "groups": {"value", "$ref", "display"},
    },
    GROUP_SCHEMA: {"displayName": None, "members": {"value", "$ref", "type"}},
    ENTERPRISE_SCHEMA: {"manager": {"value", "$ref"}},
}
# The one e-mail address a user has is their work address.
_CANONICAL = {
    (USER_SCHEMA, "emails", "type"): ["work"],
    (GROUP_SCHEMA, "members", "type"): ["User"],
}

# A user's administrative status is always stated: the portal has no "unassigned" status (a
# create or a replacement that leaves it out keeps the default or the current one: api.py).
_REQUIRED = {(USER_SCHEMA, "active")}

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="Bearer token",
    description="A SCIM token made by a Global Administrator on the portal's Provisioning page.",
    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
    primary=True,
)


def _schemas():
    schemas = []
    for uri, schema in load_default_schemas().items():
        kept = _KEPT[uri]
        attributes = []
        for attribute in schema.attributes:
            if attribute.name not in kept:
                continue
            subs = kept[attribute.name]
            if subs is not None and attribute.sub_attributes:
                attribute.sub_attributes = [s for s in attribute.sub_attributes if s.name in subs]
                for sub in attribute.sub_attributes:
                    values = _CANONICAL.get((uri, attribute.name, sub.name))
                    if values:
                        sub.canonical_values = values
            if (uri, attribute.name) in _REQUIRED:
                attribute.required = True
            attributes.append(attribute)
        schema.attributes = attributes
        schemas.append(schema)
    return schemas


def _resource_types():
    return [
        ResourceType(
            id="User",
            name="User",
            description="A person who signs in to the portal",
            endpoint="/Users",
            schema_=USER_SCHEMA,
            schema_extensions=[SchemaExtension(schema_=ENTERPRISE_SCHEMA, required=False)],
        ),
        ResourceType(
            id="Group",
            name="Group",
            description="A group of users, which can be eligible for or hold roles",
            endpoint="/Groups",
            schema_=GROUP_SCHEMA,
        ),
    ]


def _config():
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[BEARER],
    )


# Tolerate what Entra ID sends: attributes we do not keep are ignored (RFC 7644 §3.3 lets a
# service provider drop what it does not support), a PATCH remove may carry the value to remove
# (`{"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}`), and a PATCH on
# `emails[type eq "work"].value` creates the address when there is none.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


@cache
def provider() -> ScimProvider:
    return ScimProvider.from_discovery(
        _schemas(), _resource_types(), config=_config(), policy=POLICY
    )


@cache
def service() -> ScimService:
    return ScimService(provider())
