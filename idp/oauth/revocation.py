"""Revoking token families: one family and what was exchanged from it, a login's, a user's.

A new login in a browser that held one carries that login's families over,
or ends them (``follow_replaced_login``, called by ``idp.login.session``).

The caller commits. A family's access tokens and refresh tokens die with it
on every instance (``idp.oauth.family_state``).

Every path that ends logins locks rows in one order, so that two of them at
once (a logout in two tabs, a password reset during a new sign-in) never
deadlock: the account's row, its codes, its logins, then their families. A
code exchange takes the account's row (KEY SHARE), the code, then its login
(``idp.oauth.code_store``); a partner switch the account's row, then the
family it comes from (``idp.oauth.exchange``).
"""

from __future__ import annotations

from idp.audit.service import record_event
from idp.extensions import db
from idp.login.models import LoginSession
from idp.login.session import LOGIN_REPLACED, end_logins
from idp.oauth.models import AuthorizationCode, TokenFamily
from idp.timeutil import utcnow


def revoke_family(
    family: TokenFamily,
    reason: str,
    *,
    actor_id: str | None = None,
    actor_type: str = "user",
    exchanged: bool = True,
) -> bool:
    """Revoke one family (its refresh tokens and access tokens); False when already revoked.

    ``actor_id`` is the person who revoked it, or the client with ``actor_type="client"``
    (RFC 7009); without one the service did (``system``).

    With ``exchanged`` the families exchanged from it (a partner switch), and
    those exchanged from them, go too: they were obtained with its tokens
    (RFC 9700 section 4.14.2). They go even when the family itself was revoked
    before without them (its membership ended).
    """
    newly = family.revoked_at is None
    if newly:
        _revoke(family, reason, actor_id, actor_type)
    if exchanged and family.user_id is not None:
        _revoke_exchanged_from([family], reason, actor_id, actor_type)
    return newly


def _revoke_all(families: list[TokenFamily], reason: str, actor_id: str | None) -> int:
    """Revoke ``families`` and every family exchanged from them; how many of the first."""
    for family in families:
        _revoke(family, reason, actor_id)
    _revoke_exchanged_from(families, reason, actor_id)
    return len(families)


def _revoke_exchanged_from(
    families: list[TokenFamily], reason: str, actor_id: str | None, actor_type: str = "user"
) -> None:
    """Revoke the live families exchanged from ``families`` (of one user), at any depth.

    The walk goes on through families revoked before on their own (a switch
    whose membership ended): what was exchanged from them still derives from
    the family being revoked now.

    Looked for after the revocations are written: a partner switch holding one
    of ``families`` FOR SHARE (``idp.oauth.exchange``) commits its new family
    first, and the next look finds it.
    """
    parents = [family.id for family in families]
    seen = set(parents)
    user_id = families[0].user_id if families else None
    while parents:
        db.session.flush()
        children = db.session.scalars(
            db.select(TokenFamily).where(
                TokenFamily.user_id == user_id, TokenFamily.parent_id.in_(parents)
            )
        ).all()
        for child in children:
            if child.revoked_at is None:
                _revoke(child, reason, actor_id, actor_type)
        parents = [child.id for child in children if child.id not in seen]
        seen.update(parents)


def revoke_login_families(
    user_id: str, login_session_id: str, reason: str, *, actor_id: str | None = None
) -> int:
    """End one browser login of ``user_id`` and revoke every live family issued in it; how many.

    The login ends first: a code of it exchanged meanwhile either opened its
    family before (found here) or is refused (``idp.login.session.end_logins``).
    """
    end_logins(login_session_id=login_session_id)
    families = _live_families(user_id, TokenFamily.login_session_id == login_session_id)
    return _revoke_all(families, reason, actor_id)


def revoke_families_outside_login(
    user_id: str, login_session_id: str, reason: str, *, actor_id: str | None = None
) -> int:
    """Revoke every live family of ``user_id`` not issued in the login ``login_session_id``
    (those of other logins, open or not, and of none); how many. The caller commits."""
    outside = db.or_(
        TokenFamily.login_session_id.is_(None), TokenFamily.login_session_id != login_session_id
    )
    return _revoke_all(_live_families(user_id, outside), reason, actor_id)


def follow_replaced_login(
    previous_user_id: str, previous_login_id: str, user_id: str, login_id: str
) -> None:
    """A new login in the same browser: its person's families follow it, another's end.

    The same person typing the password again (``prompt=login``, ``max_age``)
    continues the login, so logging out later still ends what the hubs got
    before; codes on their way to a hub follow too, unless the earlier login
    had been ended (by support, a password change, a logout elsewhere).
    Someone else signing in on that browser ends the earlier login.

    Locks in the order of every path that ends a login: the account's row
    (``login_user``), the login's codes, the login, its families. An exchange
    holding one of the codes commits before its family is looked for.
    """
    if previous_user_id != user_id:
        revoke_login_families(previous_user_id, previous_login_id, "signed_in_as_another")
        return
    still_open = (
        db.select(LoginSession.id)
        .where(LoginSession.id == previous_login_id, LoginSession.ended_at.is_(None))
        .exists()
    )
    db.session.execute(
        db.update(AuthorizationCode)
        .where(
            AuthorizationCode.user_id == user_id,
            AuthorizationCode.login_session_id == previous_login_id,
            AuthorizationCode.used_at.is_(None),
            still_open,
        )
        .values(login_session_id=login_id)
        .execution_options(synchronize_session=False)
    )
    end_logins(login_session_id=previous_login_id)
    db.session.execute(
        db.update(TokenFamily)
        .where(
            TokenFamily.user_id == user_id,
            TokenFamily.login_session_id == previous_login_id,
            TokenFamily.revoked_at.is_(None),
        )
        .values(login_session_id=login_id)
        .execution_options(synchronize_session=False)
    )


LOGIN_REPLACED.append(follow_replaced_login)


def revoke_user_tokens(user_id: str, reason: str, *, actor_id: str | None = None) -> int:
    """Revoke every live token family of ``user_id`` (refresh and access tokens) at once.

    Used when a password changes, an email is reassigned, an account is
    disabled or support ends the sessions. The user's codes not yet exchanged
    are spent too, so that none is exchanged for new tokens afterwards (its
    exchange is refused as a replay), and their server-side logins end, so
    that a code being issued meanwhile is refused too. Does not commit: the
    caller does. Returns how many families were revoked.
    """
    _spend_codes(user_id, AuthorizationCode.expires_at > utcnow())
    end_logins(user_id=user_id)
    return _revoke_all(_live_families(user_id), reason, actor_id)


def revoke_organization_tokens(
    user_id: str, organization_id: str, reason: str, *, actor_id: str | None = None
) -> int:
    """Revoke ``user_id``'s live families for ``organization_id`` and spend their codes for it
    not yet exchanged; how many families. The caller commits, holding the account's row.

    For a membership that ends or loses a role: the roles are in the access
    tokens. Families exchanged from these into the person's other
    organizations stay, as at a refresh that finds the membership ended. A code
    exchanged meanwhile either claimed its row first (its family is found here,
    the claim holding the account's row) or finds it spent.
    """
    _spend_codes(user_id, AuthorizationCode.organization_id == organization_id)
    families = _live_families(user_id, TokenFamily.organization_id == organization_id)
    for family in families:
        _revoke(family, reason, actor_id)
    return len(families)


def _spend_codes(user_id: str, *conditions) -> None:
    """Mark ``user_id``'s codes not yet exchanged that meet ``conditions`` used: an
    exchange of one is then refused as a replay."""
    db.session.execute(
        db.update(AuthorizationCode)
        .where(
            AuthorizationCode.user_id == user_id, AuthorizationCode.used_at.is_(None), *conditions
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _live_families(user_id: str, *conditions) -> list[TokenFamily]:
    """The unrevoked families of ``user_id`` that meet ``conditions`` (the user_id index)."""
    return db.session.scalars(
        db.select(TokenFamily).where(
            TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None), *conditions
        )
    ).all()


def _revoke(
    family: TokenFamily, reason: str, actor_id: str | None, actor_type: str = "user"
) -> None:
    family.revoked_at = utcnow()
    family.revoked_reason = reason[:80]
    record_event(
        "token_family.revoked",
        actor_type=actor_type if actor_id else "system",
        actor_id=actor_id,
        target_type="token_family",
        target_id=family.id,
        organization_id=family.organization_id,
        after={"client_id": family.client_id, "user_id": family.user_id},
        reason=reason,
    )
