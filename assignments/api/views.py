"""The API's views (`/api/v1/`): thin, as the pages' are. Parse (serializers), ask
(access.answer, which authorizes each question), answer (serializers).

Every view here authenticates with an API token and answers JSON (REST_FRAMEWORK in settings);
`ApiView` is the base the later endpoints extend. The OpenAPI document is public: it describes
the API and holds no data.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from assignments.api import access, errors
from assignments.api.permissions import api_grants
from assignments.api.serializers import (
    AccessAnswerSerializer,
    AccessQuestionSerializer,
    BatchItemSerializer,
    BatchRequestSerializer,
    BatchResponseSerializer,
    ErrorSerializer,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="A parameter is missing or malformed."),
    401: OpenApiResponse(
        ErrorSerializer, description="No token, or one unknown, expired or revoked."
    ),
}
QUESTION_ERRORS = {
    403: OpenApiResponse(
        ErrorSerializer,
        description="The token's owner may ask only about themselves, or where they may view "
        "the role.",
    ),
    404: OpenApiResponse(ErrorSerializer, description="No such principal, role or scope."),
}


class ApiView(APIView):
    """The base of every API view: token authentication, JSON, Graph-shaped errors (all from
    settings.REST_FRAMEWORK), and no cache of answers that change with the clock."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "no-store")
        return response


def _answer_body(found: access.Answer | errors.ApiError, request) -> tuple[int, dict]:
    if isinstance(found, errors.ApiError):
        body = errors.error_body(found.status_code, found.detail, found.target, request)
        return found.status_code, body
    return status.HTTP_200_OK, AccessAnswerSerializer(found).data


class AccessView(ApiView):
    @extend_schema(
        operation_id="access_get",
        summary="Does a principal hold a role at a scope now?",
        description="In force now (the assignment's start has come and its end has not), "
        "through which active assignments (direct, through a group, or held at a scope above), "
        "and until when. A token's owner may always ask about themselves; about anyone else, "
        "only where they may view the role (directory readers for directory roles; for a "
        "resource role, a viewer at that scope or above).",
        parameters=[
            OpenApiParameter(
                "principal",
                str,
                required=True,
                description="A username, e-mail or user id, or `group:<name>`.",
            ),
            OpenApiParameter("role", str, required=True, description="A role's name or id."),
            OpenApiParameter(
                "scope",
                str,
                required=False,
                description="A scope's path or id; `/` (the directory) by default.",
            ),
        ],
        responses={200: AccessAnswerSerializer, **ERRORS, **QUESTION_ERRORS},
    )
    def get(self, request):
        query = request.query_params
        repeated = [name for name in ("principal", "role", "scope") if len(query.getlist(name)) > 1]
        if repeated:
            raise errors.bad_request(f"{repeated[0]} is given more than once.", repeated[0])
        question = AccessQuestionSerializer(data=query.dict())
        question.is_valid(raise_exception=True)
        (found,) = access.answer(request.user, api_grants(request), [question.question()])
        code, body = _answer_body(found, request)
        return Response(body, status=code)


class AccessBatchView(ApiView):
    @extend_schema(
        operation_id="access_batch",
        summary="Ask up to API_BATCH_MAX access questions at once",
        description="Like Microsoft Graph's `$batch`: the responses come in the order of the "
        "requests, each with its own status (200, 400, 403 or 404) and body (the answer, or an "
        "error). The batch itself is refused (400) when its body is not "
        '`{"requests": [...]}` or holds too many.',
        request=BatchRequestSerializer,
        responses={
            200: BatchResponseSerializer,
            **ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="The body is too large."),
        },
        examples=[
            OpenApiExample(
                "Two questions",
                request_only=True,
                value={
                    "requests": [
                        {"id": "1", "principal": "erin", "role": "Global Administrator"},
                        {
                            "id": "2",
                            "principal": "group:Web operators",
                            "role": "Contributor",
                            "scope": "/managementGroups/contoso/subscriptions/prod/",
                        },
                    ]
                },
            )
        ],
    )
    def post(self, request):
        batch = BatchRequestSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        items = batch.validated_data["requests"]
        ids, questions, places, responses = [], [], [], []
        for position, item in enumerate(items, start=1):
            ids.append(_item_id(item, position))
            if not isinstance(item, dict):
                refusal = errors.bad_request(
                    "Each request is an object: {principal, role, scope}.", "requests"
                )
                responses.append(_answer_body(refusal, request))
                continue
            question = BatchItemSerializer(data=item)
            if not question.is_valid():
                target, message = errors.first_error(question.errors)
                responses.append(_answer_body(errors.bad_request(message, target), request))
                continue
            places.append(len(responses))
            responses.append(None)
            questions.append(question.question())
        for place, found in zip(
            places, access.answer(request.user, api_grants(request), questions), strict=True
        ):
            responses[place] = _answer_body(found, request)
        body = {
            "responses": [
                {"id": item_id, "status": code, "body": answer}
                for item_id, (code, answer) in zip(ids, responses, strict=True)
            ]
        }
        return Response(body)


def _item_id(item, position: int) -> str:
    given = item.get("id") if isinstance(item, dict) else None
    if isinstance(given, (str, int)) and not isinstance(given, bool) and str(given).strip():
        return str(given)[:100]
    return str(position)


class OpenApiView(SpectacularJSONAPIView):
    """The OpenAPI 3 document of the API, public, generated once per process (the API does not
    change while it runs)."""

    _document = None

    def _get_schema_response(self, request):
        if OpenApiView._document is None:
            generator = self.generator_class(urlconf=self.urlconf, patterns=self.patterns)
            OpenApiView._document = generator.get_schema(request=None, public=True)
        return Response(OpenApiView._document)


class NotFoundView(APIView):
    """Any other path under /api/: a JSON 404, with or without a token."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def _missing(self, request, *args, **kwargs):
        hint = " (the API's paths have no trailing slash)" if request.path.endswith("/") else ""
        raise errors.not_found(f"No API endpoint at {request.path}{hint}.")

    get = post = put = patch = delete = head = options = _missing
