"""The portal's HTTP API (`/api/v1/`, Django REST framework) and its bearer tokens.

For systems that ask instead of being told: "does this principal hold this role here, now?".

- `tokens`: API tokens (made by a user for themselves, shown once, stored hashed, expiring,
  revocable, audited) and the check of a presented one;
- `authentication`, `permissions`: a token acts as its owner, whose grants are read at each
  request through `assignments.authz`;
- `content`, `errors`: JSON only, errors in Microsoft Graph's shape (`{"error": {"code",
  "message"}}`), never a 500 for bad input;
- `access`: the effective-access answers; `serializers`, `views`: the endpoints and their
  OpenAPI document (`/api/v1/openapi.json`);
- `forms`, `pages`: the API token pages (`/account/tokens/`).

The later Graph-compatible API reuses the base: `views.ApiView`, the authentication and
permission classes and the error handler (all named in settings.REST_FRAMEWORK), and a
versioned prefix beside `urls.API_PREFIX`.
"""
