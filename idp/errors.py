"""Domain exceptions and their one translation into RFC 9457 problem+json responses."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask, Response, current_app, json, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
INTERNAL_ERROR = "internal_error"  # the code of every failure the service did not foresee
MALFORMED_JSON = "malformed_json"  # a body that is no JSON the service can read (400)
DATABASE_UNAVAILABLE = "database_unavailable"  # the database cannot be reached (503)


class DomainError(Exception):
    """Base of every error a service raises on purpose; carries its HTTP rendering."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        fields: dict | None = None,
        code: str | None = None,
        **extra: Any,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.fields = fields
        self.extra = extra


class NotFound(DomainError):
    """The object does not exist, or the caller may not know it does."""

    status, code, title = 404, "not_found", "Not found"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status, code, title = 403, "forbidden", "Forbidden"


class Unauthorized(DomainError):
    """The request carries no valid credentials."""

    status, code, title = 401, "unauthorized", "Authentication required"


class Conflict(DomainError):
    """The request contradicts the current state (a duplicate, a race lost)."""

    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(DomainError):
    """The input breaks a rule; ``fields`` names the failing fields."""

    status, code, title = 422, "invalid_input", "Invalid input"


class InvalidCursor(InvalidInput):
    """A listing's ``cursor`` is not one a page of it handed out."""

    code = "invalid_cursor"


class ServiceUnavailable(DomainError):
    """A dependency is down; the client may retry later."""

    status, code, title = 503, "service_unavailable", "Service unavailable"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    fields: dict | None = None,
    headers: dict | None = None,
    **extra: Any,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {"type": "about:blank", "status": status, "code": code, "title": title}
    if detail:
        body["detail"] = detail
    if fields:
        body["errors"] = fields
    body.update(extra)
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def _wants_html() -> bool:
    if request.path.startswith(("/v1/", "/oauth/", "/.well-known/", "/openapi")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _html_error(status: int, title: str, detail: str | None) -> Response:
    from flask import render_template

    return Response(
        render_template("error.html", title=title, detail=detail, status=status),
        status=status,
        mimetype="text/html",
    )


def _json_decode_failed(exc: HTTPException) -> bool:
    """Whether a 400 comes from Flask failing to parse a JSON body (it hides the cause)."""
    for error in (exc, exc.__cause__):
        if isinstance(error, HTTPException) and str(error.description).startswith(
            "Failed to decode JSON"
        ):
            return True
    return False


def _database_unreachable(exc: DBAPIError) -> bool:
    """Whether a database error means "cannot reach it" (503) rather than a bug (500)."""
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


def register_error_handlers(app: Flask) -> None:
    """Install the single place where exceptions become HTTP responses."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        if _wants_html():
            return _html_error(exc.status, exc.title, exc.detail)
        return problem(exc.status, exc.code, exc.title, exc.detail, exc.fields, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        fields = None
        detail = exc.description
        code = HTTP_CODES.get(status, "http_error")
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:
            # webargs/marshmallow: {"json": {"field": ["message"]}}
            messages = data["messages"]
            fields = {}
            for location_errors in messages.values():
                if isinstance(location_errors, dict):
                    fields.update(location_errors)
            detail = "The request body has invalid fields." if fields else detail
            if isinstance(messages.get("json"), list):
                detail = "; ".join(str(m) for m in messages["json"])
                if status == 400:
                    code, detail = MALFORMED_JSON, "The request body is not valid JSON."
            if "_schema" in fields:
                detail = "The request body must be a JSON object with the documented fields."
        elif isinstance(exc, CSRFError):
            code = "csrf_failed"
            detail = "This form has expired or was not sent by this site. Reload it and try again."
        elif status == 400 and _json_decode_failed(exc):
            # Flask's own request.get_json(): same code as the schema-parsed routes
            code, detail = MALFORMED_JSON, "The request body is not valid JSON."
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            detail = f"The request body is larger than {limit} bytes." if limit else detail
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        retry_after = getattr(exc, "retry_after", None)
        if status == 429:
            headers["Retry-After"] = str(retry_after or 60)
        if _wants_html():
            resp = _html_error(status, exc.name, detail)
            resp.headers.update(headers)
            return resp
        return problem(status, code, exc.name, detail, fields, headers)

    @app.errorhandler(OAuth2Error)
    def _oauth(exc: OAuth2Error) -> Response:
        # Raised before Authlib's own handling begins (plain http to a public host
        # fails while Authlib builds its request): answered as RFC 6749 section 5.2.
        status, body, headers = exc()
        return Response(json.dumps(body), status=status, headers=headers)

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError) -> Response:
        from idp.extensions import db

        with contextlib.suppress(Exception):
            db.session.rollback()
        if isinstance(exc, DataError):
            # The database refused a value the request carried (a NUL character, a
            # string longer than its column, a number out of range): the caller's
            # input is at fault, and nothing was written.
            return _invalid_value()
        if not _database_unreachable(exc):
            return _unexpected(exc)
        log.error("database unavailable: %s", type(exc).__name__)
        if _wants_html():
            resp = _html_error(503, "Service unavailable", "Please try again in a moment.")
            resp.headers["Retry-After"] = "5"
            return resp
        return problem(
            503,
            DATABASE_UNAVAILABLE,
            "Service unavailable",
            "The database cannot be reached. Try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(UnicodeEncodeError)
    def _unencodable(exc: UnicodeEncodeError) -> Response:
        from idp.extensions import db

        # JSON may escape a lone surrogate (\ud800) that no database can store as
        # UTF-8: the caller's text is at fault, and the transaction is dropped.
        with contextlib.suppress(Exception):
            db.session.rollback()
        return _invalid_value()

    def _invalid_value() -> Response:
        detail = (
            "A value in the request is too long, out of range, contains a NUL character "
            "or is not valid Unicode."
        )
        if _wants_html():
            return _html_error(422, "Invalid input", detail)
        return problem(422, "invalid_input", "Invalid input", detail)

    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_html():
            return _html_error(500, "Something went wrong", "Please try again later.")
        return problem(500, INTERNAL_ERROR, "Internal server error")

    app.register_error_handler(Exception, _unexpected)
