"""Settings from the environment: typed readers that fail loudly, and a clean deploy check."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pim_portal.env import env_bool, env_int, env_list, env_seconds_list, env_str

BASE_DIR = Path(__file__).resolve().parents[2]
NAME = "PIM_TEST_SETTING"


# env_bool ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " yes "])
def test_env_bool_reads_true(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    assert env_bool(NAME, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off"])
def test_env_bool_reads_false(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    assert env_bool(NAME, True) is False


def test_env_bool_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    assert env_bool(NAME, True) is True
    assert env_bool(NAME, False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "tru"])
def test_env_bool_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        env_bool(NAME, False)


# env_int -----------------------------------------------------------------------------------


def test_env_int_reads_a_whole_number(monkeypatch):
    monkeypatch.setenv(NAME, "3600")
    assert env_int(NAME, 0) == 3600


def test_env_int_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    assert env_int(NAME, 42) == 42


def test_env_int_blank_gives_the_default(monkeypatch):
    monkeypatch.setenv(NAME, "  ")
    assert env_int(NAME, 42) == 42


@pytest.mark.parametrize("raw", ["ten", "1.5", "30m", "0x10"])
def test_env_int_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        env_int(NAME, 0)


# env_list / env_str ------------------------------------------------------------------------


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv(NAME, " pim.example.com, ,admin.example.com ")
    assert env_list(NAME, []) == ["pim.example.com", "admin.example.com"]


def test_env_list_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    assert env_list(NAME, ["localhost"]) == ["localhost"]


def test_env_str_unset_gives_the_default(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    assert env_str(NAME, "fallback") == "fallback"


# manage.py with production settings ----------------------------------------------------------


def _production_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_"))}
    for name in (
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CSRF_COOKIE_SECURE",
        "TIME_ZONE",
        "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests for their own process
    ):
        env.pop(name, None)
    alphabet = string.ascii_letters + string.digits + "!#%&()*+,-./:;<=>?@[]^_{|}~"
    env.update(
        DEBUG="0",
        SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        ALLOWED_HOSTS="pim.example.com",
        DJANGO_SETTINGS_MODULE="pim_portal.settings",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key():
    result = _manage("check", "--deploy", env=_production_env(SECRET_KEY=None))
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_bad_boolean_in_the_environment_stops_the_portal_with_its_name():
    result = _manage("check", env=_production_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_unknown_time_zone_stops_the_portal():
    result = _manage("check", env=_production_env(TIME_ZONE="Mars/Olympus"))
    assert result.returncode != 0
    assert "TIME_ZONE='Mars/Olympus'" in result.stderr


def _last_line(result: subprocess.CompletedProcess) -> list[str]:
    """What `shell -c` printed last (it first says how many objects it imported)."""
    return result.stdout.strip().splitlines()[-1].split()


def test_kept_database_connections_are_health_checked():
    """A connection kept by DATABASE_CONN_MAX_AGE that a database restart killed is replaced."""
    from django.conf import settings

    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_kept_database_connections_are_health_checked_with_production_settings():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; d = settings.DATABASES['default'];"
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])",
        env=_production_env(DATABASE_CONN_MAX_AGE="60"),
    )
    assert _last_line(result) == ["60", "True"], result.stderr


def test_sign_in_throttle_is_read_from_the_environment():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s;"
        "print(s.AXES_FAILURE_LIMIT, s.SIGNIN_ADDRESS_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)",
        env=_production_env(
            SIGNIN_FAILURE_LIMIT="3", SIGNIN_ADDRESS_FAILURE_LIMIT="50", SIGNIN_LOCKOUT_MINUTES="30"
        ),
    )
    assert _last_line(result) == ["3", "50", "0:30:00"], result.stderr


@pytest.mark.parametrize(
    "name", ["SIGNIN_FAILURE_LIMIT", "SIGNIN_ADDRESS_FAILURE_LIMIT", "SIGNIN_LOCKOUT_MINUTES"]
)
def test_sign_in_throttle_below_one_stops_the_portal(name):
    result = _manage("check", env=_production_env(**{name: "0"}))
    assert result.returncode != 0
    assert f"{name}=0 must be at least 1" in result.stderr


def _redis_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_reachable(), reason="needs Redis on 127.0.0.1:6379")
def test_cache_url_shares_the_cache_in_redis():
    env = _production_env(CACHE_URL="redis://127.0.0.1:6379/13", CACHE_KEY_PREFIX="pim_test")
    script = "from django.core.cache import cache; cache.set('{0}', 'kept', 60); print('set')"
    assert _last_line(_manage("shell", "-c", script.format("shared"), env=env)) == ["set"]
    read = (
        "from django.core.cache import caches; cache = caches['default'];"
        "print(type(cache).__name__, cache.get('shared'));"
        "cache.delete('shared')"
    )
    result = _manage("shell", "-c", read, env=env)  # another process
    assert _last_line(result) == ["RedisCache", "kept"], result.stderr


def test_a_cache_url_that_is_not_redis_stops_the_portal():
    result = _manage("check", env=_production_env(CACHE_URL="memcached://127.0.0.1:11211"))
    assert result.returncode != 0
    assert "CACHE_URL='memcached://127.0.0.1:11211' is not a Redis URL" in result.stderr


def test_env_seconds_list_reads_a_retry_schedule(monkeypatch):
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0, 5,300")
    assert env_seconds_list("WEBHOOK_RETRY_SCHEDULE", [1]) == [0, 5, 300]


@pytest.mark.parametrize(
    ("raw", "why"), [("5,soon", "'soon' is not a number"), ("5,-1", "less than 0")]
)
def test_env_seconds_list_refuses_what_is_no_number_of_seconds(monkeypatch, raw, why):
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", raw)
    with pytest.raises(ImproperlyConfigured, match=why):
        env_seconds_list("WEBHOOK_RETRY_SCHEDULE", [1])
