"""PIM Portal settings, read from environment variables (see README, Configuration)."""

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pim_portal.env import env_bool, env_float, env_int, env_list, env_seconds_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "guardian",
    "django_q",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "pim_portal",
    "audit",
    "assignments",
    "approvals",
    "reviews",
    "connectors",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "pim_portal.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "pim_portal.middleware.SessionTimeoutMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "pim_portal.middleware.RequestContextMiddleware",
    "pim_portal.middleware.UserTimezoneMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

if DEBUG:
    # The development server serves static files itself; WhiteNoise serves collected ones.
    MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "pim_portal.urls"
CSRF_FAILURE_VIEW = "pim_portal.views.csrf_failure"
WSGI_APPLICATION = "pim_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assignments.context_processors.navigation",
                "approvals.context_processors.inbox",
                "pim_portal.people.context_processors.navigation",
                "pim_portal.sso.context_processors.sign_in",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection that died (a database restart) is replaced, not failed on.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a busy database rather than failing: web server and worker share the file.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "pim_portal.User"
AUTHENTICATION_BACKENDS = [
    "pim_portal.throttle.SignInThrottleBackend",  # first: refuses locked-out sign-ins
    "pim_portal.backends.LocalLoginBackend",  # passwords, limited by LOCAL_LOGIN
    "pim_portal.sso.backend.OIDCBackend",  # single sign-on (OpenID Connect), when configured
    "guardian.backends.ObjectPermissionBackend",
]
# Local password sign-in: all (default), breakglass (emergency access accounts only), off.
LOCAL_LOGIN = env_str("LOCAL_LOGIN", "all").strip().lower()
if LOCAL_LOGIN not in ("all", "breakglass", "off"):
    raise ImproperlyConfigured(f"LOCAL_LOGIN={LOCAL_LOGIN!r} must be all, breakglass or off.")
# Sign-in MFA (pim_portal/signin_mfa.py): a TOTP code after the password from users who hold or
# are eligible for any role (privileged, the default), from everyone, or (quick start only:
# `check --deploy` warns) from nobody; and how long the code step waits, in seconds.
SIGNIN_MFA = env_str("SIGNIN_MFA", "privileged").strip().lower()
if SIGNIN_MFA not in ("privileged", "everyone", "off"):
    raise ImproperlyConfigured(f"SIGNIN_MFA={SIGNIN_MFA!r} must be privileged, everyone or off.")
SIGNIN_MFA_TIMEOUT = env_int("SIGNIN_MFA_TIMEOUT", 300)
if SIGNIN_MFA_TIMEOUT < 30:
    raise ImproperlyConfigured(f"SIGNIN_MFA_TIMEOUT={SIGNIN_MFA_TIMEOUT} must be at least 30.")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Single sign-on with OpenID Connect (pim_portal/sso): off while OIDC_ISSUER is empty. The
# endpoints come from the issuer's discovery document; the claim names say where the username,
# e-mail, display name and groups are; OIDC_MFA_AMR/OIDC_MFA_ACR list the amr/acr values that
# count as MFA at sign-in (none by default: the portal asks for its own code).
OIDC_ISSUER = env_str("OIDC_ISSUER", "").strip()
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID", "").strip()
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
if env_str("OIDC_CLIENT_SECRET_FILE", ""):
    try:
        OIDC_CLIENT_SECRET = Path(env_str("OIDC_CLIENT_SECRET_FILE")).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"OIDC_CLIENT_SECRET_FILE: {error}") from None
OIDC_NAME = env_str("OIDC_NAME", "").strip() or "your organization"
OIDC_SCOPES = env_list("OIDC_SCOPES", ["openid", "email", "profile"])
OIDC_CLAIM_USERNAME = env_str("OIDC_CLAIM_USERNAME", "preferred_username")
OIDC_CLAIM_EMAIL = env_str("OIDC_CLAIM_EMAIL", "email")
OIDC_CLAIM_NAME = env_str("OIDC_CLAIM_NAME", "name")
OIDC_CLAIM_GROUPS = env_str("OIDC_CLAIM_GROUPS", "groups")
OIDC_CREATE_USERS = env_bool("OIDC_CREATE_USERS", True)
OIDC_LINK_SCIM_USERS = env_bool("OIDC_LINK_SCIM_USERS", True)
OIDC_MFA_AMR = env_list("OIDC_MFA_AMR", [])
OIDC_MFA_ACR = env_list("OIDC_MFA_ACR", [])
OIDC_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256").strip()
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT_SECONDS", 10.0)
OIDC_LEEWAY_SECONDS = env_int("OIDC_LEEWAY_SECONDS", 60)
if OIDC_ISSUER:
    from pim_portal.sso.config import check_settings

    check_settings(
        issuer=OIDC_ISSUER,
        client_id=OIDC_CLIENT_ID,
        client_secret=OIDC_CLIENT_SECRET,
        scopes=OIDC_SCOPES,
        sign_algo=OIDC_SIGN_ALGO,
        leeway=OIDC_LEEWAY_SECONDS,
    )

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Failed sign-ins (django-axes): an account locks after SIGNIN_FAILURE_LIMIT failures within
# the lock-out time, a client address after SIGNIN_ADDRESS_FAILURE_LIMIT (see throttle.py).
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5)
SIGNIN_ADDRESS_FAILURE_LIMIT = env_int("SIGNIN_ADDRESS_FAILURE_LIMIT", 20)
SIGNIN_LOCKOUT_MINUTES = env_int("SIGNIN_LOCKOUT_MINUTES", 15)
for _name, _value in (
    ("SIGNIN_FAILURE_LIMIT", AXES_FAILURE_LIMIT),
    ("SIGNIN_ADDRESS_FAILURE_LIMIT", SIGNIN_ADDRESS_FAILURE_LIMIT),
    ("SIGNIN_LOCKOUT_MINUTES", SIGNIN_LOCKOUT_MINUTES),
):
    if _value < 1:
        raise ImproperlyConfigured(f"{_name}={_value} must be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=SIGNIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
AXES_HANDLER = "pim_portal.throttle.SignInThrottle"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "pim_portal.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "pim_portal.throttle.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r} is not a known time zone.") from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# E-mail: console by default; SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "mail"))  # the file backend's folder
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PIM Portal <pim@localhost>")

# Sessions: an idle timeout (renewed on every request) and an absolute one from sign-in.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)
# Renewed by pim_portal.middleware.SessionMiddleware at most once a minute, not every request.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_TIMEOUT", 10 * 60 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Security: strict by default when DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "PIM Portal")

# The cache keeps what pages count for a moment (the approvals badge, a role's tab counts, the
# dashboard's counts) and the API's refusal limit. Empty: each process's own memory, which
# forgets only what its own process wrote; with several web or worker processes, a Redis
# database shared by all (its own: clearing a cache empties its whole database).
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"CACHE_URL={CACHE_URL!r} is not a Redis URL (redis://host:port/db, rediss:// or "
            "unix://)."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "pim_portal"),
        }
    }
# Counts of a role's assignments are kept at most this long (they are also forgotten on every
# write and when an end passes); the approvals badge, PIM_APPROVALS_BADGE_SECONDS.
PIM_ASSIGNMENT_COUNTS_SECONDS = env_int("PIM_ASSIGNMENT_COUNTS_SECONDS", 30)

# django-q2: the ORM broker by default, Redis when REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER = {
    # The queue's name on the broker: two portals sharing one Redis need different names.
    "name": env_str("Q_CLUSTER_NAME", "pim_portal"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    "sync": env_bool("Q_SYNC", False),
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# Security alert thresholds and reminders (see audit alerts).
PIM_REMINDER_DAYS = [14, 1]

# The time engine (pim_portal/timekeeper.py): how often the timekeeper looks for new due work
# at the latest, how many drain tasks it queues for work that is due (one per worker process
# that should take part), how many rows a worker claims per transaction, and how long one
# drain task may run before it hands over.
PIM_TIMEKEEPER_POLL = env_float("TIMEKEEPER_POLL_SECONDS", 1.0)
PIM_TIMEKEEPER_FANOUT = env_int("TIMEKEEPER_FANOUT", env_int("Q_WORKERS", 2))
PIM_TIMEKEEPER_BATCH = env_int("TIMEKEEPER_BATCH", 200)
PIM_TIMEKEEPER_DRAIN_SECONDS = 60

# Connectors (connectors/): how often every target is read and compared with the desired
# state (drift), and the longest wait between retries of a target that is down.
CONNECTOR_RECONCILE_MINUTES = env_int("CONNECTOR_RECONCILE_MINUTES", 5)
CONNECTOR_RETRY_MAX_SECONDS = env_int("CONNECTOR_RETRY_MAX_SECONDS", 600)

# Webhooks (connectors/webhooks/): seconds to connect and to get an answer; the delays before
# each try (Standard Webhooks' schedule: 8 tries over about 31 hours).
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
WEBHOOK_RETRY_SCHEDULE = env_seconds_list(
    "WEBHOOK_RETRY_SCHEDULE", [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
)

# Bulk approve or deny: at most this many requests in one action (approvals); a form posting
# that many ids needs room for them.
PIM_BULK_DECISION_MAX = env_int("BULK_DECISION_MAX", 1000)
DATA_UPLOAD_MAX_NUMBER_FIELDS = max(1000, PIM_BULK_DECISION_MAX + 100)

# The audit log streamed to a SIEM (audit/siem.py), as it is sealed, in the shape of Microsoft
# Graph's directoryAudit: RFC 5424 syslog over UDP or TCP, and/or a JSON-lines file.
AUDIT_SYSLOG_HOST = env_str("AUDIT_SYSLOG_HOST", "")
AUDIT_SYSLOG_PORT = env_int("AUDIT_SYSLOG_PORT", 514)
AUDIT_SYSLOG_PROTOCOL = env_str("AUDIT_SYSLOG_PROTOCOL", "udp").strip().lower()
if AUDIT_SYSLOG_PROTOCOL not in ("udp", "tcp"):
    raise ImproperlyConfigured(f"AUDIT_SYSLOG_PROTOCOL={AUDIT_SYSLOG_PROTOCOL!r}: udp or tcp.")
AUDIT_SYSLOG_FACILITY = env_str("AUDIT_SYSLOG_FACILITY", "authpriv")
AUDIT_SYSLOG_TIMEOUT = env_float("AUDIT_SYSLOG_TIMEOUT", 5.0)
AUDIT_SYSLOG_UDP_MAX_BYTES = env_int("AUDIT_SYSLOG_UDP_MAX_BYTES", 2048)
AUDIT_JSONL_PATH = env_str("AUDIT_JSONL_PATH", "")
# Signed checkpoints of the chain (audit/checkpoints.py), with an Ed25519 key the database does
# not hold: the private key as a PKCS8 PEM file or the base64 of its 32 raw bytes; the public
# keys that verify (keep old ones after a rotation); a file off the database host where every
# checkpoint is also written; how often; and how long events are kept (0: forever).
AUDIT_SIGNING_KEY_FILE = env_str("AUDIT_SIGNING_KEY_FILE", "")
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "")
AUDIT_VERIFY_KEY_FILE = env_str("AUDIT_VERIFY_KEY_FILE", "")
AUDIT_VERIFY_KEY = env_str("AUDIT_VERIFY_KEY", "")
AUDIT_CHECKPOINT_FILE = env_str("AUDIT_CHECKPOINT_FILE", "")
AUDIT_CHECKPOINT_MINUTES = env_int("AUDIT_CHECKPOINT_MINUTES", 5)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0)
# The audit log pages: how many event ids one page searches when only "actor contains" or
# "principal contains" filter it (no index serves those).
AUDIT_SCAN_WINDOW = env_int("AUDIT_SCAN_WINDOW", 100_000)
# The dashboard's counts over every assignment, and at most its drawn insights, are kept this
# long (seconds; 0: counted on every load); the weekly digest mail can be turned off.
PIM_DASHBOARD_COUNTS_SECONDS = env_int("DASHBOARD_COUNTS_SECONDS", 60)
PIM_WEEKLY_DIGEST = env_bool("WEEKLY_DIGEST", True)
# The Approve requests badge in the navigation keeps its count this long (0: count on every
# page). The inbox itself keeps its list until a request, a decision or role settings are
# written or an approval deadline passes, and this long at most (0: read on every load).
PIM_APPROVALS_BADGE_SECONDS = env_int("APPROVALS_BADGE_SECONDS", 30)
PIM_APPROVALS_INBOX_SECONDS = env_int("APPROVALS_INBOX_SECONDS", 30)
# Security alerts: how often the scan runs (alerts/tasks.py).
ALERT_SCAN_MINUTES = env_int("ALERT_SCAN_MINUTES", 5)

# SCIM 2.0 provisioning (pim_portal/scim/): the largest request body accepted (bytes; larger
# ones answer 413), the lifetime a new token gets by default and the longest one allowed (days).
SCIM_MAX_BODY_BYTES = env_int("SCIM_MAX_BODY_BYTES", 1_048_576)
SCIM_TOKEN_DEFAULT_DAYS = env_int("SCIM_TOKEN_DEFAULT_DAYS", 365)
SCIM_TOKEN_MAX_DAYS = env_int("SCIM_TOKEN_MAX_DAYS", 730)
if not 0 < SCIM_TOKEN_DEFAULT_DAYS <= SCIM_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        "SCIM_TOKEN_DEFAULT_DAYS must be more than 0 and at most SCIM_TOKEN_MAX_DAYS."
    )

# The HTTP API (assignments/api/, under /api/v1/): bearer tokens only (no session, so no CSRF
# to guard), JSON only, errors as {"error": {"code", "message"}}. API tokens last
# API_TOKEN_DEFAULT_DAYS by default and at most API_TOKEN_MAX_DAYS; a batch asks at most
# API_BATCH_MAX questions.
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
if not 0 < API_TOKEN_DEFAULT_DAYS <= API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        "API_TOKEN_DEFAULT_DAYS must be more than 0 and at most API_TOKEN_MAX_DAYS."
    )
API_BATCH_MAX = env_int("API_BATCH_MAX", 100)
if API_BATCH_MAX < 1:
    raise ImproperlyConfigured(f"API_BATCH_MAX={API_BATCH_MAX} must be at least 1.")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["assignments.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["assignments.api.permissions.HasApiToken"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["assignments.api.content.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "assignments.api.content.JSONOnly",
    "EXCEPTION_HANDLER": "assignments.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PIM Portal API",
    "DESCRIPTION": "Effective access: whether a principal holds a role at a scope now, through "
    "which assignment and until when. Authenticate with an API token (Your account › API "
    "tokens) as `Authorization: Bearer pim_api_…`; it answers with its owner's permissions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # the document is public: it describes the API, no data
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING")},  # django-q2's logger name
        # axes logs every sign-in at INFO; failures and lock-outs (WARNING) are in the audit log
        "axes": {"level": "WARNING"},
    },
}
