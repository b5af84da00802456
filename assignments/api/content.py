"""What the API reads and writes: JSON, and nothing else.

- `JSONParser` reads at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (larger: 413) and refuses what is
  not JSON (not UTF-8, NaN, nested past what Python parses) with a 400, never a 500.
- `JSONOnly` answers JSON whatever the Accept header asks: no browsable API, no format
  suffixes, no 406 for a client that sends `Accept: text/html`.
"""

import json

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation

from assignments.api.errors import too_large


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {}) if request is not None else {}
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise too_large(f"The body is larger than {limit} bytes.")
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large(f"The body is larger than {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:
            raise ParseError(f"The body is not valid JSON: {str(error)[:200]}") from None


class JSONOnly(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
