"""scim2-server's storage, over the portal's users and groups.

scim2-server does the protocol (routing, validation, PATCH and PUT applied to the stored
resource, discovery, errors); this reads and writes the database: a user or group as a SCIM
resource, a search as one filtered, paged query (plus one for the groups of the page's users,
or the members of the page's groups), and each write through `pim_portal.scim.services`, which
audits it with the token named as the actor.
"""

import hashlib
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from scim2_models import (
    InvalidValueException,
    NotFoundException,
    NotImplementedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SearchRequest,
)
from scim2_server.storage import ScimStorage, SearchPage

from pim_portal.actor import Actor
from pim_portal.scim import services
from pim_portal.scim.filters import GROUP_ATTRIBUTES, USER_ATTRIBUTES, to_q
from pim_portal.scim.provider import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    provider,
)

User = get_user_model()


def _version(body: dict) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:16]}"'


def _meta(body: dict, resource_type: str, created) -> dict:
    body["meta"] = {
        "resourceType": resource_type,
        "created": created,
        "lastModified": created,
        "version": _version(body),
    }
    return body


def user_body(user, *, with_groups: bool = True) -> dict:
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": user.username,
        "active": user.is_active,
    }
    # A display name the portal made up (User.save: the full name, or the username) is none.
    if user.display_name and user.display_name != (user.get_full_name() or user.username):
        body["displayName"] = user.display_name
    if user.external_id:
        body["externalId"] = user.external_id
    name = {"givenName": user.first_name or None, "familyName": user.last_name or None}
    if any(name.values()):
        body["name"] = name
    if user.email:
        body["emails"] = [{"value": user.email, "type": "work"}]
    if with_groups:
        member_of = [g for g in user.groups.all() if not g.name.startswith(services.DELETED_PREFIX)]
        if member_of:
            body["groups"] = [
                {"value": str(g.pk), "$ref": f"Groups/{g.pk}", "display": g.name} for g in member_of
            ]
    if user.manager_id:
        body["schemas"].append(ENTERPRISE_SCHEMA)
        manager = {"value": str(user.manager_id), "$ref": f"Users/{user.manager_id}"}
        body[ENTERPRISE_SCHEMA] = {"manager": manager}
    return _meta(body, "User", user.date_joined)


def group_body(group, *, with_members: bool = True) -> dict:
    body: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.name,
    }
    identity = getattr(group, "identity", None)
    if identity is not None and identity.external_id:
        body["externalId"] = identity.external_id
    if with_members:
        members = list(group.user_set.all())
        if members:
            body["members"] = [
                {"value": str(u.pk), "$ref": f"Users/{u.pk}", "type": "User"} for u in members
            ]
    return _meta(body, "Group", None)


def _wants(parameters, attribute: str) -> bool:
    """Whether the response keeps `attribute` (then the storage must load it)."""
    if parameters is None:
        return True
    attribute = attribute.lower()

    def names(paths):
        return {str(p).lower().rsplit(":", 1)[-1].split(".")[0] for p in paths or []}

    if parameters.attributes:
        return attribute in names(parameters.attributes)
    return attribute not in names(parameters.excluded_attributes)


def _users_query(with_groups: bool):
    queryset = services.users()
    if with_groups:
        queryset = queryset.prefetch_related(
            Prefetch("groups", queryset=Group.objects.order_by("pk"))
        )
    return queryset


def _groups_query(with_members: bool):
    queryset = services.groups().select_related("identity")
    if with_members:
        queryset = queryset.prefetch_related(
            Prefetch("user_set", queryset=User.objects.order_by("pk").only("pk"))
        )
    return queryset


def _manager_id(resource) -> int | None:
    model = provider().model_for(ENTERPRISE_SCHEMA)
    extension = getattr(resource, model.__name__, None) if model is not None else None
    manager = getattr(extension, "manager", None)
    value = getattr(manager, "value", None)
    if value is None or str(value).strip() == "":
        return None
    pk = services._pk(value)
    if pk is None:
        raise InvalidValueException(detail=f"manager {value!r} is not a user here.")
    return pk


def _user_fields(resource) -> services.UserFields:
    name = resource.name
    email = ""
    emails = resource.emails or []
    # The portal keeps one address: the work one, or else the first given.
    chosen = next((e for e in emails if (e.type or "").lower() == "work"), None)
    chosen = chosen or (emails[0] if emails else None)
    if chosen is not None:
        email = chosen.value or ""
    return services.UserFields(
        username=resource.user_name or "",
        external_id=resource.external_id or "",
        first_name=(name.given_name if name else None) or "",
        last_name=(name.family_name if name else None) or "",
        display_name=resource.display_name or "",
        email=email,
        active=resource.active,
        manager_id=_manager_id(resource),
    )


def _member_ids(resource) -> set[int]:
    ids = set()
    for member in resource.members or []:
        if (member.type or "User") != "User":
            raise InvalidValueException(detail="members: only users can be members of a group.")
        pk = services._pk(member.value)
        if pk is None:
            raise InvalidValueException(detail=f"members: no user {member.value!r} here.")
        ids.add(pk)
    return ids


def _group_fields(resource) -> services.GroupFields:
    return services.GroupFields(
        name=resource.display_name or "",
        external_id=resource.external_id or "",
        member_ids=_member_ids(resource),
    )


class DjangoStorage(ScimStorage):
    """Reads and writes for one SCIM request, made by `actor` (the token's system actor)."""

    def __init__(self, actor: Actor):
        self.actor = actor

    def _model(self, name: str):
        return provider().model_for(name)

    def _resource(self, name: str, body: dict) -> Resource[Any]:
        return self._model(name).model_validate(body)

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        pk = services._pk(resource_id)
        if resource_type.name == "User":
            user = _users_query(_wants(response_parameters, "groups")).filter(pk=pk).first()
            if user is None:
                raise NotFoundException(detail=f"No user {resource_id}.")
            return self._resource("User", user_body(user))
        group = _groups_query(_wants(response_parameters, "members")).filter(pk=pk).first()
        if group is None:
            raise NotFoundException(detail=f"No group {resource_id}.")
        return self._resource(
            "Group", group_body(group, with_members=_wants(response_parameters, "members"))
        )

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        if len(resource_types) != 1:
            raise NotImplementedException(detail="Search Users or Groups, one at a time.")
        name = resource_types[0].name
        is_user = name == "User"
        parameters = ResponseParameters(
            attributes=search_request.attributes,
            excluded_attributes=search_request.excluded_attributes,
        )
        if is_user:
            with_more = _wants(parameters, "groups")
            queryset, attributes = _users_query(with_more), USER_ATTRIBUTES
        else:
            with_more = _wants(parameters, "members")
            queryset, attributes = _groups_query(with_more), GROUP_ATTRIBUTES
        if search_request.filter is not None:
            matching = queryset.model.objects.filter(to_q(search_request.filter.ast, attributes))
            queryset = queryset.filter(pk__in=matching.values("pk"))
        total = queryset.count()
        start = search_request.start_index_0 or 0
        count = search_request.count
        if count == 0:
            return SearchPage(total=total, resources=[])
        page = queryset.order_by("pk")[start : None if count is None else start + count]
        if is_user:
            bodies = [user_body(u, with_groups=with_more) for u in page]
        else:
            bodies = [group_body(g, with_members=with_more) for g in page]
        return SearchPage(total=total, resources=[self._resource(name, b) for b in bodies])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        if resource_type.name == "User":
            user = services.scim_user_create(actor=self.actor, fields=_user_fields(resource))
            return self.get(resource_type, str(user.pk))
        group = services.scim_group_create(actor=self.actor, fields=_group_fields(resource))
        return self.get(resource_type, str(group.pk))

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            services.scim_user_update(
                actor=self.actor, user_id=resource.id, fields=_user_fields(resource)
            )
        else:
            services.scim_group_update(
                actor=self.actor, group_id=resource.id, fields=_group_fields(resource)
            )
        return self.get(resource_type, resource.id)

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        if resource_type.name == "User":
            services.scim_user_delete(actor=self.actor, user_id=resource_id)
        else:
            services.scim_group_delete(actor=self.actor, group_id=resource_id)
