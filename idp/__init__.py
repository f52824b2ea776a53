"""idp: identity provider and permission-flow service for the Partner Hub and Client Hub."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from flask import Flask, g, has_request_context, request

from idp import config as settings
from idp import ratelimits
from idp.extensions import api, csrf, db, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_JSON_TYPES = ("application/json", "application/merge-patch+json")


def create_app(config: dict | None = None) -> Flask:
    """Build the application: defaults, then ``IDP_*`` variables, then ``config``."""
    instance_path = Path(os.environ.get("IDP_INSTANCE_PATH") or PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(settings.load_settings(instance_path))
    if config:
        app.config.update(config)
    settings.finalize(app.config, instance_path)
    _configure_logging(app)
    _trust_proxies(app)
    from idp.login.session import CookieSessionInterface

    app.session_interface = CookieSessionInterface()

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    csrf.init_app(app)
    ratelimits.init_app(app)
    api.init_app(app)

    from idp.keys.ring import KeyRing

    app.extensions["idp_keyring"] = KeyRing()

    _import_models()
    _register_blueprints(app)

    from idp.errors import register_error_handlers

    register_error_handlers(app)
    _register_request_hooks(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind ``IDP_PROXY_HOPS`` reverse proxies, take the client's address and scheme from them.

    Each trusted proxy appends to X-Forwarded-For, so the address that many
    hops from the right is the one the nearest untrusted party connected
    from; anything a client wrote further left is ignored. The scheme is the
    last X-Forwarded-Proto, the one the nearest proxy set: proxies in a chain
    overwrite it with the scheme they were reached by (or pass the outer
    one's on) rather than append. Without this every request behind a proxy
    would come from the proxy: one shared rate limit and failed-login counter
    for every user, and the proxy's address in the audit log. With 0 (the
    default) the headers are ignored, since a client talking to the service
    directly could write them.
    """
    hops = app.config["IDP_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=1, x_host=0, x_port=0)


def _configure_logging(app: Flask) -> None:
    level = app.config["IDP_LOG_LEVEL"]
    _name_records_after_their_request()
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
    )
    app.logger.setLevel(level)


def _name_records_after_their_request() -> None:
    """Every log record carries ``request_id``: the ``X-Request-Id`` a caller can quote
    from a failed response finds its lines in the log ("-" outside a request)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "idp_request_id", False):
        return

    def record(*args, **kwargs) -> logging.LogRecord:
        made = make(*args, **kwargs)
        made.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return made

    record.idp_request_id = True
    logging.setLogRecordFactory(record)


def _import_models() -> None:
    """Import every model module so the metadata (and Alembic) sees all tables."""
    from idp.accounts import models as _accounts  # noqa: F401
    from idp.apikeys import models as _apikeys  # noqa: F401
    from idp.audit import models as _audit  # noqa: F401
    from idp.channels import models as _channels  # noqa: F401
    from idp.consent import models as _consent  # noqa: F401
    from idp.keys import models as _keys  # noqa: F401
    from idp.login import models as _login  # noqa: F401
    from idp.mfa import models as _mfa  # noqa: F401
    from idp.oauth import models as _oauth  # noqa: F401
    from idp.orgs import models as _orgs  # noqa: F401
    from idp.outbox import models as _outbox  # noqa: F401
    from idp.support import models as _support  # noqa: F401
    from idp.unannounced_changes import UNANNOUNCED as _unannounced  # noqa: F401
    from idp.webhooks import models as _webhooks  # noqa: F401


def register_api(app: Flask, blueprint) -> None:
    """Register a JSON API blueprint: documented in OpenAPI, bearer-authenticated, no CSRF."""
    csrf.exempt(blueprint)
    api.register_blueprint(blueprint)


def _register_blueprints(app: Flask) -> None:
    from idp.accounts.account_pages import bp as account_pages_bp
    from idp.accounts.pages import bp as accounts_pages_bp
    from idp.accounts.views import blp as accounts_api_blp
    from idp.apikeys.views import blp as apikeys_blp
    from idp.audit.views import blp as audit_api_blp
    from idp.channels.announce import register as announce_new_clients
    from idp.channels.views import blp as channels_blp
    from idp.consent.pages import blp as consent_pages_blp
    from idp.consent.screen import register as register_consent_step
    from idp.consent.views import blp as consent_blp
    from idp.health.views import blp as health_blp
    from idp.login.views import bp as login_bp
    from idp.mfa.pages import bp as mfa_pages_bp
    from idp.oauth.api import blp as oauth_clients_blp
    from idp.oauth.server import init_oauth
    from idp.oauth.views import blp as oauth_blp
    from idp.openapi import document_security
    from idp.orgs.member_views import blp as members_blp
    from idp.orgs.pages import bp as orgs_pages_bp
    from idp.orgs.views import blp as invitations_blp
    from idp.support.pages import blp as support_pages_blp
    from idp.support.views import blp as support_api_blp
    from idp.webhooks.delivery import register as register_webhook_deliverer
    from idp.webhooks.views import blp as webhooks_blp

    document_security(app)
    app.register_blueprint(health_blp)
    init_oauth(app)
    app.register_blueprint(oauth_blp)
    app.register_blueprint(login_bp)
    register_api(app, oauth_clients_blp)
    register_api(app, accounts_api_blp)
    app.register_blueprint(accounts_pages_bp)
    app.register_blueprint(account_pages_bp)
    app.register_blueprint(mfa_pages_bp)
    register_api(app, invitations_blp)
    register_api(app, members_blp)
    app.register_blueprint(orgs_pages_bp)
    register_api(app, apikeys_blp)
    register_api(app, consent_blp)
    app.register_blueprint(consent_pages_blp)
    register_consent_step()
    register_api(app, support_api_blp)
    register_api(app, audit_api_blp)
    register_api(app, channels_blp)
    register_api(app, webhooks_blp)
    register_webhook_deliverer()
    announce_new_clients()
    app.register_blueprint(support_pages_blp)
    if app.config["IDP_ENV"] != "production":
        from idp.demo.oauth import callback_bp
        from idp.webhooks.demo import receiver_bp

        app.register_blueprint(callback_bp)
        app.register_blueprint(receiver_bp)
    if app.config["IDP_BENCH_MODE"]:
        from idp.bench.views import blp as bench_blp

        app.register_blueprint(bench_blp)


def _register_request_hooks(app: Flask) -> None:
    from idp.errors import HTTP_CODES, problem

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(12)

    @app.before_request
    def _json_only_api():
        if request.path.startswith("/v1/") and request.method in {"POST", "PUT", "PATCH"}:
            has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
            if has_body and request.mimetype not in _JSON_TYPES:
                return problem(
                    415,
                    HTTP_CODES[415],
                    "Unsupported Media Type",
                    "Send the request body as application/json.",
                )
        return None

    hsts = app.config["IDP_HSTS"]

    @app.after_request
    def _security_headers(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # The origin only, and only over HTTPS: no path or query (where links carry
        # their tokens) leaves a page, while the page's own form posts still carry the
        # Referer that the CSRF check requires over HTTPS (Flask-WTF's strict mode).
        response.headers.setdefault("Referrer-Policy", "strict-origin")
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if response.mimetype == "text/html":
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            )
            response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith(("/v1/", "/oauth/")) or response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
