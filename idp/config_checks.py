"""Start-up checks: a setting the service could not use stops it before it serves a request.

Each check names the setting, what it must be and (with any password hidden)
what it was given, so an operator can fix the value without reading the code.
"""

from __future__ import annotations

import hmac
import logging
import re
from email.utils import getaddresses
from urllib.parse import urlsplit

# Every commit that moves a change counter waits this long (idp.changes): keep it short.
MAX_LEASE_MS = 1000


# Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto the service may believe.
MAX_PROXY_HOPS = 5
ENVIRONMENTS = ("development", "production")
# RFC 6749 section 4.1.2: a code lives at most ten minutes.
MAX_AUTH_CODE_TTL = 600
# Any lifetime beyond this is a mistake for "never", and past dates stop being computable.
MAX_LIFETIME = 10 * 366 * 24 * 3600
MAX_WEBHOOK_TIMEOUT = 60
# RFC 6797 section 6.1: max-age, optionally includeSubDomains (and the preload list's token).
_HSTS = re.compile(r"max-age=\d{1,10}(\s*;\s*includeSubDomains)?(\s*;\s*preload)?", re.I)
# Visible ASCII: no space, control character or anything a terminal could disguise.
_VISIBLE = re.compile(r"[!-~]+")
MAX_AUDIENCE_CHARS = 2048
# secrets.token_urlsafe(32) gives 43 characters: 256 bits.
MIN_SECRET_CHARS = 43
# Below this a login form or a token request no longer fits in a body.
MIN_BODY_BYTES = 4096
LIFETIME_SETTINGS = (
    "IDP_ACCESS_TOKEN_TTL",
    "IDP_ID_TOKEN_TTL",
    "IDP_REFRESH_TOKEN_TTL",
    "IDP_SESSION_IDLE_TIMEOUT",
    "IDP_SESSION_MAX_AGE",
    "IDP_SUPPORT_SESSION_IDLE_TIMEOUT",
    "IDP_SUPPORT_SESSION_MAX_AGE",
    "IDP_PURGE_AFTER",
    "IDP_EMAIL_TOKEN_TTL",
    "IDP_PASSWORD_RESET_TTL",
    "IDP_INVITATION_TTL",
)
# A support login's limit and the general one it may not exceed.
SUPPORT_SESSION_LIMITS = (
    ("IDP_SUPPORT_SESSION_IDLE_TIMEOUT", "IDP_SESSION_IDLE_TIMEOUT"),
    ("IDP_SUPPORT_SESSION_MAX_AGE", "IDP_SESSION_MAX_AGE"),
)
RATE_LIMIT_SETTINGS = (
    "IDP_LOGIN_RATE_LIMIT",
    "IDP_TOKEN_RATE_LIMIT",
    "IDP_ACCOUNT_RATE_LIMIT",
    "IDP_ACCOUNT_EMAIL_RATE_LIMIT",
)


class ConfigurationError(RuntimeError):
    """The service refuses to start with this configuration."""


def _check_production_secrets(config: dict) -> None:
    """Two different secrets of at least ``MIN_SECRET_CHARS`` characters (256 bits of base64).

    A short or shared value can be guessed offline: from a session cookie the
    secret key, and with it every CSRF token and counter name.
    """
    secret, kek = config.get("SECRET_KEY"), config.get("IDP_KEY_ENCRYPTION_KEY")
    for name, value in (("IDP_SECRET_KEY", secret), ("IDP_KEY_ENCRYPTION_KEY", kek)):
        if len(value) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"{name} must be at least {MIN_SECRET_CHARS} random characters in production, "
                f"such as the output of: python3 -c 'import secrets; "
                f"print(secrets.token_urlsafe(32))'"
            )
    if hmac.compare_digest(str(secret).encode(), str(kek).encode()):
        raise ConfigurationError("IDP_SECRET_KEY and IDP_KEY_ENCRYPTION_KEY must differ")


def _check_whole_number(
    config: dict, name: str, low: int, high: int | None, what: str, *, key: str | None = None
) -> None:
    """An integer setting outside ``low``..``high`` (no upper bound if None) refuses to start.

    ``key`` is the config key when it differs from the variable's ``name``.
    """
    value = config.get(key or name)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigurationError(f"{name} must be {what}, {bounds}, got {value!r}")


def _check_support_session_limits(config: dict) -> None:
    """A support login never outlasts anybody else's: its limits are at most the general ones."""
    for name, general in SUPPORT_SESSION_LIMITS:
        if config[name] > config[general]:
            raise ConfigurationError(
                f"{name} must not be longer than {general} ({config[general]} seconds), "
                f"got {config[name]!r}"
            )


def _check_rate_limit(name: str, value) -> None:
    """A rate limit that could not be read on every request is refused when the service starts."""
    from limits import parse_many

    try:
        parsed = parse_many(value) if isinstance(value, str) else []
    except ValueError:
        parsed = []
    if not parsed or any(limit.amount < 1 for limit in parsed):
        raise ConfigurationError(
            f"{name} must be one or more limits such as '60/minute;600/hour', got {value!r}"
        )
    counted = [(limit.amount, limit.multiples, limit.GRANULARITY.name) for limit in parsed]
    if len(set(counted)) != len(counted):
        # The same limit twice shares one counter and counts every request twice.
        raise ConfigurationError(f"{name} names the same limit twice, got {value!r}")


def _shown(url: str) -> str:
    """``url`` fit for an error message: any user name or password replaced.

    Everything up to the last "@" goes: a password may hold "/", "?" or "#"
    unencoded (the database and Redis drivers read it so), and then no earlier
    character tells where it ends.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + sep + rest


def _port_readable(parts) -> bool:
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is no port)
    except ValueError:
        return False
    return True


def _check_issuer(config: dict, production: bool) -> None:
    """The base URL every token and discovery names (RFC 8414 section 2); https in production."""
    issuer = config.get("IDP_ISSUER")
    if not isinstance(issuer, str):
        issuer = ""
    schemes = ("https",) if production else ("http", "https")
    try:
        parts = urlsplit(issuer)
    except ValueError:  # an unclosed IPv6 bracket, say
        parts = None
    if (
        parts is None
        # Exactly as written: clients compare the iss claim as a string, and the
        # session cookie is Secure only for an issuer that starts with https://.
        or not any(issuer.startswith(scheme + "://") for scheme in schemes)
        # urlsplit drops tabs and line breaks without a word (a CRLF .env file).
        or any(c <= " " or c == "\x7f" for c in issuer)
        or not parts.hostname
        or not _port_readable(parts)
        # Served at the host's root only: mounted under a prefix, discovery would name
        # it twice; behind a proxy that strips it, redirects and page links lose it.
        or parts.path not in ("", "/")
        or "@" in parts.netloc
        or "?" in issuer
        or "#" in issuer
    ):
        needed = "an https URL" if production else "an http or https URL"
        raise ConfigurationError(
            f"IDP_ISSUER must be {needed} with a host, no user, path, query or fragment, "
            f"got {_shown(issuer)!r}"
        )


def _check_database(config: dict) -> None:
    """``IDP_DATABASE_URL`` names SQLite or PostgreSQL through the driver this service ships.

    ``postgresql://`` and ``postgres://`` (as hosting platforms write them) mean
    psycopg 3; SQLAlchemy would otherwise reach for psycopg2, which is not installed.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = config.get("SQLALCHEMY_DATABASE_URI")
    try:
        url = make_url(raw)  # a port that is no number is a ValueError here
    except (ArgumentError, ValueError, TypeError):
        url = None
    if url is not None and url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
        config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
    if url is None or url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigurationError(
            "IDP_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL such as "
            f"'postgresql+psycopg://idp@db.example:5432/idp', got {_shown(str(raw))!r}"
        )


def _check_redis_prefix(config: dict) -> None:
    """The Redis key prefix ends up in every key verbatim."""
    prefix = config.get("IDP_REDIS_PREFIX")
    if not isinstance(prefix, str) or not _VISIBLE.fullmatch(prefix) or len(prefix) > 64:
        # An empty prefix would share the key space with whatever else uses the server.
        raise ConfigurationError(
            "IDP_REDIS_PREFIX must be 1 to 64 printable characters without spaces, "
            f"such as 'idp:', got {prefix!r}"
        )


def _check_audience(config: dict) -> None:
    """The ``aud`` of access tokens: an absolute URI without fragment (RFC 8707 section 2)."""
    audience = config.get("IDP_API_AUDIENCE")
    if audience is None:
        return
    try:
        scheme = urlsplit(audience).scheme if isinstance(audience, str) else ""
    except ValueError:
        scheme = ""
    if (
        not scheme
        or "#" in audience
        or len(audience) > MAX_AUDIENCE_CHARS
        or not _VISIBLE.fullmatch(audience)
    ):
        raise ConfigurationError(
            "IDP_API_AUDIENCE must be an absolute URI without a fragment, such as "
            f"'https://api.example', got {_shown(str(audience))!r}"
        )


def _check_services(config: dict) -> None:
    """Redis, SMTP and the sender address are read now, not at the first request that needs them."""
    redis_url = config.get("IDP_REDIS_URL")
    if redis_url is not None:
        from redis.connection import parse_url

        try:
            parse_url(redis_url)  # what redis-py reads, schemes included; it dials nothing
        except (ValueError, TypeError):
            raise ConfigurationError(
                "IDP_REDIS_URL must be a redis://, rediss:// or unix:// URL, "
                f"got {_shown(str(redis_url))!r}"
            ) from None
    smtp_url = config.get("IDP_SMTP_URL")
    if smtp_url is not None:
        from idp.outbox.smtp import parse_smtp_url

        try:
            parse_smtp_url(smtp_url)
        except ValueError as exc:
            # The URL may hold a password: the message names the setting, never the value.
            raise ConfigurationError(str(exc)) from None
    sender = config.get("IDP_MAIL_FROM")
    named = getaddresses([sender]) if isinstance(sender, str) else []
    address = named[0][1] if len(named) == 1 else ""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or any(c in sender for c in "\r\n"):
        raise ConfigurationError(
            f"IDP_MAIL_FROM must be an address such as 'idp <no-reply@example.com>', got {sender!r}"
        )


def check_settings(config: dict) -> None:
    """Refuse an unknown environment, an unsafe production set-up and any unusable setting.

    A ``postgresql://`` database URL is rewritten to name the driver (``_check_database``).
    """
    if config.get("IDP_ENV") not in ENVIRONMENTS:
        raise ConfigurationError(
            f"IDP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {config.get('IDP_ENV')!r}"
        )
    production = config["IDP_ENV"] == "production"
    if production and config.get("IDP_BENCH_MODE"):
        raise ConfigurationError("IDP_BENCH_MODE must never be on with IDP_ENV=production")
    if production and not (config.get("SECRET_KEY") and config.get("IDP_KEY_ENCRYPTION_KEY")):
        raise ConfigurationError(
            "IDP_ENV=production needs IDP_SECRET_KEY and IDP_KEY_ENCRYPTION_KEY to be set"
        )
    if production:
        _check_production_secrets(config)
    if production and config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        raise ConfigurationError("IDP_ENV=production needs IDP_DATABASE_URL (PostgreSQL)")
    _check_whole_number(
        config, "IDP_CHANGE_LEASE_MS", 0, MAX_LEASE_MS, "a whole number of milliseconds"
    )
    for name in LIFETIME_SETTINGS:
        _check_whole_number(config, name, 1, MAX_LIFETIME, "a number of seconds (at most 10 years)")
    _check_support_session_limits(config)
    _check_whole_number(
        config, "IDP_WEBHOOK_TIMEOUT", 1, MAX_WEBHOOK_TIMEOUT, "a number of seconds"
    )
    _check_whole_number(config, "IDP_AUTH_CODE_TTL", 1, MAX_AUTH_CODE_TTL, "a number of seconds")
    _check_whole_number(
        config,
        "IDP_MAX_BODY_BYTES",
        MIN_BODY_BYTES,
        None,
        "a number of bytes",
        key="MAX_CONTENT_LENGTH",
    )
    if not isinstance(logging.getLevelName(config.get("IDP_LOG_LEVEL")), int):
        raise ConfigurationError(
            "IDP_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
            f"got {config.get('IDP_LOG_LEVEL')!r}"
        )
    _check_issuer(config, production)
    _check_services(config)
    _check_database(config)
    _check_redis_prefix(config)
    _check_audience(config)
    _check_whole_number(
        config, "IDP_PROXY_HOPS", 0, MAX_PROXY_HOPS, "the number of trusted reverse proxies"
    )
    for name in RATE_LIMIT_SETTINGS:
        _check_rate_limit(name, config.get(name))


def check_hsts(config: dict) -> None:
    """The Strict-Transport-Security value, once its default for the issuer is filled in."""
    if config["IDP_HSTS"] and not _HSTS.fullmatch(config["IDP_HSTS"]):
        raise ConfigurationError(
            "IDP_HSTS must be empty or 'max-age=<seconds>' with optional "
            f"'; includeSubDomains' and '; preload', got {_shown(config['IDP_HSTS'])!r}"
        )
