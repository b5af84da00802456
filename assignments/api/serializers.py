"""The API's shapes: what it reads (checked here, so bad input is a 400 naming the parameter)
and what it answers (camelCase, as Microsoft Graph writes; also what the OpenAPI document
shows)."""

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from assignments.api.access import GROUP_PREFIX, Question
from assignments.api.errors import graph_time

MAX_VALUE_LENGTH = 1000  # a scope path's longest


def _messages(name: str) -> dict[str, str]:
    return {
        "required": f"{name} is required.",
        "blank": f"{name} is empty.",
        "null": f"{name} must be a string, not null.",
        "invalid": f"{name} must be a string.",
        "max_length": f"{name} is longer than {{max_length}} characters.",
    }


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would take 12 or 1.5 and make them text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AccessQuestionSerializer(serializers.Serializer):
    """The query of GET /api/v1/access, and each request of a batch."""

    principal = StrictCharField(
        max_length=MAX_VALUE_LENGTH,
        error_messages=_messages("principal"),
        help_text="A user's username, e-mail or id, or `group:<name>` for a group.",
    )
    role = StrictCharField(
        max_length=MAX_VALUE_LENGTH,
        error_messages=_messages("role"),
        help_text="A role's name (in any case) or id.",
    )
    scope = StrictCharField(
        max_length=MAX_VALUE_LENGTH,
        error_messages=_messages("scope"),
        required=False,
        default="/",
        help_text="A scope's path (`/managementGroups/contoso/subscriptions/prod/`) or id; "
        "the directory root `/` by default.",
    )

    def validate_principal(self, value: str) -> str:
        if value[: len(GROUP_PREFIX)].lower() == GROUP_PREFIX and not value[
            len(GROUP_PREFIX) :
        ].strip(" "):
            raise serializers.ValidationError("principal names no group after group:.")
        return value

    def validate_scope(self, value: str) -> str:
        if not (value.startswith("/") or (value.isascii() and value.isdigit())):
            raise serializers.ValidationError("scope must be a path starting with / or an id.")
        return value

    def question(self) -> Question:
        data = self.validated_data
        return Question(principal=data["principal"], role=data["role"], scope=data["scope"])


class BatchItemSerializer(AccessQuestionSerializer):
    id = serializers.CharField(
        max_length=100,
        required=False,
        help_text="Your name for this request, given back with its response.",
        error_messages=_messages("id"),
    )


class BatchRequestSerializer(serializers.Serializer):
    """POST /api/v1/access/batch: each request is checked on its own (a bad one is a 400 in
    its place in the responses); the list itself must be a list, of at most API_BATCH_MAX."""

    requests = serializers.ListField(
        child=BatchItemSerializer(),
        error_messages={
            "required": "requests is required: a list of {principal, role, scope}.",
            "not_a_list": "requests must be a list of {principal, role, scope}.",
            "null": "requests must be a list, not null.",
        },
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"requests": ['The body must be a JSON object: {"requests": [...]}.']}
            )
        requests = data.get("requests")
        if not isinstance(requests, list):
            problem = "required" if "requests" not in data else "not_a_list"
            message = self.fields["requests"].error_messages[problem]
            raise serializers.ValidationError({"requests": [message]})
        limit = settings.API_BATCH_MAX
        if len(requests) > limit:
            raise serializers.ValidationError(
                {"requests": [f"A batch asks at most {limit} questions, not {len(requests)}."]}
            )
        return {"requests": requests}  # each one is checked on its own, by the view


# --- Answers --------------------------------------------------------------------------------


class GraphDateTimeField(serializers.DateTimeField):
    def to_representation(self, value):
        return None if value is None else graph_time(value)


class IdField(serializers.CharField):
    """Ids are strings, as Graph's are."""

    def to_representation(self, value):
        return str(value)


class PrincipalSerializer(serializers.Serializer):
    id = IdField()
    type = serializers.ChoiceField(choices=["user", "group"])
    displayName = serializers.CharField(source="display_name")
    accountEnabled = serializers.BooleanField(
        source="account_enabled",
        allow_null=True,
        help_text="Users only: false for a deactivated account, which holds nothing.",
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.type != "user":
            data.pop("accountEnabled")
        return data


class RoleSerializer(serializers.Serializer):
    id = IdField()
    displayName = serializers.CharField(source="name")
    kind = serializers.ChoiceField(choices=["directory", "resource"])


class ScopeSerializer(serializers.Serializer):
    id = IdField()
    path = serializers.CharField()
    displayName = serializers.CharField(source="name")


class ScopeRefSerializer(serializers.Serializer):
    id = IdField()
    path = serializers.CharField()


class HoldingSerializer(serializers.Serializer):
    id = IdField(source="assignment.pk")
    kind = serializers.ChoiceField(choices=["active"], source="assignment.kind")
    memberType = serializers.ChoiceField(
        choices=["direct", "group"],
        source="member_type",
        help_text="direct: assigned to the principal; group: to a group the user belongs to.",
    )
    principal = PrincipalSerializer(help_text="Whom the assignment names.")
    scope = ScopeRefSerializer(
        source="assignment.scope", help_text="Where it is held: the scope or one above it."
    )
    inherited = serializers.BooleanField(help_text="Held at a scope above the one asked about.")
    start = GraphDateTimeField(source="assignment.start")
    end = GraphDateTimeField(source="assignment.end", allow_null=True, help_text="null: permanent.")
    activatedFrom = IdField(
        source="assignment.activated_from_id",
        allow_null=True,
        help_text="The eligible assignment this activation was made from; null for an "
        "assignment made active by an administrator.",
    )


class AccessAnswerSerializer(serializers.Serializer):
    principal = PrincipalSerializer()
    role = RoleSerializer()
    scope = ScopeSerializer()
    inForce = serializers.BooleanField(
        source="in_force", help_text="The role is in force now, at this scope."
    )
    eligible = serializers.BooleanField(
        help_text="An eligible assignment in force gives it: the principal could activate it."
    )
    assignments = HoldingSerializer(
        many=True, help_text="Every active assignment in force that gives it."
    )
    until = GraphDateTimeField(
        allow_null=True,
        help_text="The latest end among the assignments: null when one is permanent, or when "
        "the role is not in force.",
    )
    checkedAt = GraphDateTimeField(source="checked_at")


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    target = serializers.CharField(required=False, help_text="The parameter at fault.")
    innerError = serializers.DictField(child=serializers.CharField(), required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="BatchResponseBody",
        serializers=[AccessAnswerSerializer, ErrorSerializer],
        resource_type_field_name=None,
    )
)
class BatchBodyField(serializers.JSONField):
    """The answer (status 200) or an error body (any other status)."""


class BatchResponseItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The request's id, or its position (1, 2, …).")
    status = serializers.IntegerField(help_text="200, 400, 403 or 404.")
    body = BatchBodyField(help_text="The answer (200), or an error body.")


class BatchResponseSerializer(serializers.Serializer):
    responses = BatchResponseItemSerializer(many=True)
