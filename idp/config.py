"""Settings: defaults, then ``IDP_*`` environment variables, then an explicit override.

What each setting may be is checked in ``idp.config_checks`` before the service starts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from idp.config_checks import ConfigurationError, check_hsts, check_settings

DEV_SECRET_FILE = "dev-secret-key"
DEV_KEK_FILE = "dev-key-encryption-key"
SESSION_COOKIE = "idp_session"
SESSION_COOKIE_HTTPS = "__Host-idp_session"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Seconds to wait for PostgreSQL to answer a new connection (libpq's connect_timeout;
# a connect_timeout in IDP_DATABASE_URL wins).
DATABASE_CONNECT_TIMEOUT = 5


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    # A typo must not quietly turn a protection off (or a bench endpoint on).
    raise ConfigurationError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), got {raw!r}")


def subkey(config, label: bytes) -> bytes:
    """A key for one purpose, derived from ``SECRET_KEY`` (an HMAC of ``label``).

    Each purpose names its own label, so one digest never stands in for another.
    """
    secret = config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, label, hashlib.sha256).digest()


def keyed_digest(key: bytes, text: str) -> str:
    """The hex HMAC-SHA256 of ``text`` under ``key`` (a ``subkey``): a name that hides it."""
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _dev_secret(instance_path: Path, filename: str) -> str:
    """Return a per-installation development secret kept under ``instance/``."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / filename
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def load_settings(instance_path: Path) -> dict:
    """Read every ``IDP_*`` setting, documented in the README, into Flask config keys."""
    env = os.environ.get("IDP_ENV") or "development"
    database_url = os.environ.get("IDP_DATABASE_URL") or (
        f"sqlite:///{instance_path / 'idp.sqlite3'}"
    )
    secret_key = os.environ.get("IDP_SECRET_KEY")
    kek = os.environ.get("IDP_KEY_ENCRYPTION_KEY")
    idle_timeout = _env_int("IDP_SESSION_IDLE_TIMEOUT", 12 * 3600)
    max_age = _env_int("IDP_SESSION_MAX_AGE", 7 * 24 * 3600)
    settings = {
        "IDP_ENV": env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": secret_key,
        "IDP_KEY_ENCRYPTION_KEY": kek,
        "IDP_REDIS_URL": os.environ.get("IDP_REDIS_URL") or None,
        "IDP_REDIS_PREFIX": os.environ.get("IDP_REDIS_PREFIX", "idp:"),
        "IDP_CHANGE_LEASE_MS": _env_int("IDP_CHANGE_LEASE_MS", 20),
        "IDP_ISSUER": os.environ.get("IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/"),
        "IDP_SMTP_URL": os.environ.get("IDP_SMTP_URL") or None,
        "IDP_MAIL_FROM": os.environ.get("IDP_MAIL_FROM", "idp <no-reply@idp.localhost>"),
        "IDP_API_AUDIENCE": os.environ.get("IDP_API_AUDIENCE") or None,
        "IDP_ACCESS_TOKEN_TTL": _env_int("IDP_ACCESS_TOKEN_TTL", 900),
        "IDP_ID_TOKEN_TTL": _env_int("IDP_ID_TOKEN_TTL", 3600),
        "IDP_REFRESH_TOKEN_TTL": _env_int("IDP_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        "IDP_AUTH_CODE_TTL": _env_int("IDP_AUTH_CODE_TTL", 60),
        "IDP_SESSION_IDLE_TIMEOUT": idle_timeout,
        "IDP_SESSION_MAX_AGE": max_age,
        # Support staff's logins end sooner; never later than everyone's, even by default.
        "IDP_SUPPORT_SESSION_IDLE_TIMEOUT": _env_int(
            "IDP_SUPPORT_SESSION_IDLE_TIMEOUT", min(30 * 60, idle_timeout)
        ),
        "IDP_SUPPORT_SESSION_MAX_AGE": _env_int(
            "IDP_SUPPORT_SESSION_MAX_AGE", min(10 * 3600, max_age)
        ),
        "IDP_PURGE_AFTER": _env_int("IDP_PURGE_AFTER", 7 * 24 * 3600),
        "IDP_EMAIL_TOKEN_TTL": _env_int("IDP_EMAIL_TOKEN_TTL", 24 * 3600),
        "IDP_PASSWORD_RESET_TTL": _env_int("IDP_PASSWORD_RESET_TTL", 3600),
        "IDP_INVITATION_TTL": _env_int("IDP_INVITATION_TTL", 7 * 24 * 3600),
        "IDP_BENCH_MODE": _env_bool("IDP_BENCH_MODE"),
        "IDP_RATELIMIT_ENABLED": _env_bool("IDP_RATELIMIT_ENABLED", True),
        "IDP_LOGIN_RATE_LIMIT": os.environ.get("IDP_LOGIN_RATE_LIMIT") or "10/minute;100/hour",
        "IDP_TOKEN_RATE_LIMIT": os.environ.get("IDP_TOKEN_RATE_LIMIT") or "60/minute;600/hour",
        "IDP_ACCOUNT_RATE_LIMIT": os.environ.get("IDP_ACCOUNT_RATE_LIMIT")
        or "10 per minute;100 per hour",
        "IDP_ACCOUNT_EMAIL_RATE_LIMIT": os.environ.get("IDP_ACCOUNT_EMAIL_RATE_LIMIT")
        or "5 per hour",
        "IDP_PROXY_HOPS": _env_int("IDP_PROXY_HOPS", 0),
        "IDP_HSTS": os.environ.get("IDP_HSTS"),
        "IDP_WEBHOOK_TIMEOUT": _env_int("IDP_WEBHOOK_TIMEOUT", 10),
        "MAX_CONTENT_LENGTH": _env_int("IDP_MAX_BODY_BYTES", 64 * 1024),
        "IDP_LOG_LEVEL": (os.environ.get("IDP_LOG_LEVEL") or "INFO").strip().upper(),
    }
    return settings


def finalize(config: dict, instance_path: Path) -> None:
    """Fill development secrets, derive extension settings and refuse unsafe production setups."""
    check_settings(config)
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _dev_secret(instance_path, DEV_SECRET_FILE)
    if not config.get("IDP_KEY_ENCRYPTION_KEY"):
        config["IDP_KEY_ENCRYPTION_KEY"] = _dev_secret(instance_path, DEV_KEK_FILE)
    https = config["IDP_ISSUER"].startswith("https://")
    # Flask's own defaults are already in the config, so setdefault would never apply.
    if config.get("SESSION_COOKIE_NAME") in (None, "session"):
        # Over https the __Host- prefix (RFC 6265bis section 4.1.3.2) makes browsers keep
        # the cookie only as set by this host itself, Secure, for the whole site: no
        # sibling subdomain and no plain-http page can plant or shadow a login.
        config["SESSION_COOKIE_NAME"] = SESSION_COOKIE_HTTPS if https else SESSION_COOKIE
    if config["SESSION_COOKIE_NAME"].startswith("__Host-"):
        config["SESSION_COOKIE_DOMAIN"] = None
        config["SESSION_COOKIE_PATH"] = "/"
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_SECURE"] = https
    # Served over HTTPS: browsers must never come back over plain HTTP (RFC 6797).
    if config.get("IDP_HSTS") is None:
        config["IDP_HSTS"] = "max-age=31536000; includeSubDomains" if https else ""
    check_hsts(config)
    # The cookie's lifetime is the idle timeout: it slides with activity (idp.login.session),
    # while IDP_SESSION_MAX_AGE bounds the login itself on the server.
    if config.get("PERMANENT_SESSION_LIFETIME") in (None, timedelta(days=31)):
        config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=config["IDP_SESSION_IDLE_TIMEOUT"])
    config["WTF_CSRF_TIME_LIMIT"] = None  # bound to the session instead of a clock
    uri = config["SQLALCHEMY_DATABASE_URI"]
    # No pre-ping: it costs a database round trip on every request. A connection
    # lost to a database restart fails its request with 503 (Retry-After), and
    # SQLAlchemy then replaces the whole pool; recycling bounds connection age.
    # hide_parameters: a database error's message (and so any log line quoting it)
    # shows the statement but not the values, which may be addresses or secrets' hashes.
    engine_options: dict = {"pool_pre_ping": False, "pool_recycle": 1800, "hide_parameters": True}
    if uri.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif "connect_timeout" not in make_url(uri).query:
        # Without it, a database host that drops packets holds a request, or an idp
        # command, for as long as the operating system's TCP retries (minutes).
        engine_options["connect_args"] = {"connect_timeout": DATABASE_CONNECT_TIMEOUT}
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    config["API_TITLE"] = "idp"
    config["API_VERSION"] = "v1"
    config["OPENAPI_VERSION"] = "3.0.3"
    config["OPENAPI_URL_PREFIX"] = "/"
    config["OPENAPI_JSON_PATH"] = "openapi.json"
