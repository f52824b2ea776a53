"""Members changed while something else races them, on PostgreSQL.

Every test forces one interleaving (``tests.consent.interleave``): one request is
paused at a named point, holding what it has locked by then, while the competing
change runs on its own connection until it commits or waits for a row lock; then
the paused request goes on and commits, and the competitor finishes after it.
Each test also checks that the competitor really waited, so that the race it is
named after is the one that ran (not two changes one after the other).

* Two owners of a partner with exactly two owners demote or remove each other, or
  both step down or leave: one wins, the other is refused (403: its own role was
  taken; 409 ``last_owner``: it would be the last); one owner is left.
* An owner demoted while they act on a third member is refused: the roles are
  read again under the organization's lock, not taken from their token.
* A member removed while they exchange a code for the partner, or switch partner
  into it (RFC 8693): whichever comes first, no live family for that partner is
  left (the exchange is refused, or its family is revoked by the removal).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.accounts.models import User
from idp.apikeys import service as apikeys
from idp.apikeys.models import ChannelApiKey
from idp.errors import DomainError, Forbidden
from idp.extensions import db
from idp.oauth import clients as oauth_clients
from idp.oauth import exchange as token_exchange
from idp.oauth import grants
from idp.oauth.models import TOKEN_EXCHANGE, AuthorizationCode, OAuthClient, TokenFamily
from idp.orgs import invitations, members
from idp.orgs import service as orgs_service
from idp.orgs.models import Invitation, Membership, Organization
from idp.webhooks import service as webhooks
from idp.webhooks.models import WebhookEndpoint
from policies.actor import Actor
from tests.consent.factories import make_grant
from tests.consent.interleave import Competitor, pause_before
from tests.factories import make_channel, make_org, make_user
from tests.oauth.conftest import BrowserClient, Flow, make_hub_clients, refresh, tokens_for

pytestmark = pytest.mark.postgres

ACCESS = "urn:ietf:params:oauth:token-type:access_token"


class Racer(Competitor):
    """A ``Competitor`` that remembers how it settled: ``"waiting"`` or ``"done"``."""

    settled: str | None = None

    def start_and_settle(self) -> str:
        self.settled = super().start_and_settle()
        return self.settled


def pause_after(monkeypatch, owner, name: str, competitor: Competitor) -> None:
    """Run ``competitor`` (until settled) right after the first call of ``owner.name``."""
    real = getattr(owner, name)
    fired: list[bool] = []

    def paused(*args, **kwargs):
        result = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            competitor.start_and_settle()
        return result

    monkeypatch.setattr(owner, name, paused)


def _actor(partner_id: str, user_id: str, role: str = "owner") -> Actor:
    """The actor a partner hub token issued while ``user_id`` had ``role`` describes."""
    return Actor(
        hub="partner", organization_id=partner_id, roles=frozenset({role}), user_id=user_id
    )


def _membership_ids(partner_id: str) -> dict[str, str]:
    """The partner's memberships: user id to membership id."""
    return dict(
        db.session.execute(
            sa.select(Membership.user_id, Membership.id).where(
                Membership.organization_id == partner_id
            )
        ).all()
    )


def _roles(partner_id: str) -> dict[str, str]:
    """The partner's members as they are now: user id to role."""
    db.session.expire_all()
    return dict(
        db.session.execute(
            sa.select(Membership.user_id, Membership.role).where(
                Membership.organization_id == partner_id
            )
        ).all()
    )


def _pause_with_locks(monkeypatch, pause: str, competitor: Competitor) -> None:
    """Pause the change of ``members`` with some or all of its locks held.

    ``after_organization_held``: the organization's row is held, neither account
    yet; ``before_revoking``: every lock is held and the last-owner check passed.
    """
    if pause == "after_organization_held":
        pause_before(monkeypatch, members, "_hold_accounts", competitor)
    else:
        pause_before(monkeypatch, members, "revoke_organization_tokens", competitor)


# --- two owners at once ---------------------------------------------------------------

PAUSES = ["after_organization_held", "before_revoking"]
# How the second of two owners is refused: demoting or removing the other, it finds
# its own role taken (403); stepping down or leaving itself, it is the last owner (409).
REFUSALS = {
    "each_other": (Forbidden, 403, "forbidden"),
    "themselves": (members.LastOwner, 409, "last_owner"),
}


@pytest.mark.parametrize("pause", PAUSES)
@pytest.mark.parametrize("whom", ["each_other", "themselves"])
@pytest.mark.parametrize("change", ["demote", "remove"])
def test_the_two_owners_of_a_partner_changing_at_once_leave_it_exactly_one_owner(
    app_ctx, monkeypatch, change, whom, pause
):
    partner = make_org("partner", "Acme")
    ann = make_user("partner", partner, "owner", email="ann@acme.example").id
    bob = make_user("partner", partner, "owner", email="bob@acme.example").id
    db.session.commit()
    partner_id = partner.id
    membership = _membership_ids(partner_id)

    def act(actor_id: str, target_id: str) -> None:
        actor, target = _actor(partner_id, actor_id), membership[target_id]
        if change == "demote":
            members.change_role(actor, partner_id, target, "member")
        else:
            members.remove_member(actor, partner_id, target)

    target = {ann: bob, bob: ann} if whom == "each_other" else {ann: ann, bob: bob}
    # Bob's request comes while Ann's holds (some of) its locks.
    bobs = Racer(app_ctx, lambda: act(bob, target[bob]))
    _pause_with_locks(monkeypatch, pause, bobs)
    act(ann, target[ann])
    try:
        bobs.finish()
        refused = None
    except DomainError as exc:
        refused = exc

    left = bob if whom == "themselves" else ann  # Ann's change went through
    owners = [user for user, role in _roles(partner_id).items() if role == "owner"]
    assert owners == [left], f"the partner's owners afterwards: {owners}"
    assert refused is not None, "both changes went through"
    kind, status, code = REFUSALS[whom]
    assert (type(refused), refused.status, refused.code) == (kind, status, code)
    assert bobs.settled == "waiting", "Bob's change did not wait for Ann's: no race was run"


@pytest.mark.parametrize("what", ["remove_a_member", "make_a_member_owner"])
def test_an_owner_demoted_while_acting_on_a_third_member_is_refused(app_ctx, monkeypatch, what):
    """Bob's token still says owner; Ann made him a member while his request waited."""
    partner = make_org("partner", "Acme")
    ann = make_user("partner", partner, "owner", email="ann@acme.example").id
    bob = make_user("partner", partner, "owner", email="bob@acme.example").id
    carl = make_user("partner", partner, "member", email="carl@acme.example").id
    db.session.commit()
    partner_id = partner.id
    membership = _membership_ids(partner_id)

    def bob_acts_on_carl():
        actor = _actor(partner_id, bob)
        if what == "remove_a_member":
            return members.remove_member(actor, partner_id, membership[carl])
        return members.change_role(actor, partner_id, membership[carl], "owner")

    bobs = Racer(app_ctx, bob_acts_on_carl)
    pause_before(monkeypatch, members, "revoke_organization_tokens", bobs)
    members.change_role(_actor(partner_id, ann), partner_id, membership[bob], "member")
    try:
        bobs.finish()
        refused = None
    except DomainError as exc:
        refused = exc

    assert _roles(partner_id) == {ann: "owner", bob: "member", carl: "member"}
    assert isinstance(refused, Forbidden), f"Bob's change ended with {refused!r}"
    assert bobs.settled == "waiting", "Bob's change did not wait for Ann's: no race was run"


# --- a removal racing the member's own token requests ---------------------------------


@pytest.fixture
def world(app_ctx):
    """Acme with its owner and a consultant (member), who also owns Globex; the hub clients."""
    make_hub_clients()
    acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
    owner = make_user("partner", acme, "owner", email="owner@acme.example")
    consultant = make_user("partner", acme, "member", email="consultant@example.com")
    db.session.add(Membership.create(consultant, globex, "owner"))
    db.session.commit()
    return {
        "acme": acme.id,
        "globex": globex.id,
        "owner": owner.id,
        "consultant": consultant.id,
        "consultant_email": consultant.email,
        "membership": _membership_ids(acme.id)[consultant.id],
    }


@pytest.fixture
def flow(app):
    return Flow(BrowserClient(app))


def _remove_the_consultant(world):
    members.remove_member(_actor(world["acme"], world["owner"]), world["acme"], world["membership"])


def _live_families(user_id: str, organization_id: str) -> list[str]:
    db.session.expire_all()
    return db.session.scalars(
        sa.select(TokenFamily.id).where(
            TokenFamily.user_id == user_id,
            TokenFamily.organization_id == organization_id,
            TokenFamily.revoked_at.is_(None),
        )
    ).all()


def _assert_removed_with_no_live_family(world) -> None:
    assert world["consultant"] not in _roles(world["acme"])
    assert _live_families(world["consultant"], world["acme"]) == []
    unused_codes = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuthorizationCode)
        .where(
            AuthorizationCode.user_id == world["consultant"],
            AuthorizationCode.organization_id == world["acme"],
            AuthorizationCode.used_at.is_(None),
        )
    )
    assert unused_codes == 0


def _answer(response) -> tuple[int, str | None]:
    return response.status_code, response.get_json().get("error")


@pytest.mark.parametrize("first", ["removal", "exchange"])
def test_a_member_removed_while_exchanging_a_code_for_the_partner_keeps_no_family_for_it(
    app_ctx, monkeypatch, world, flow, first
):
    code = flow.code_for(world["consultant_email"], world["acme"])

    if first == "removal":
        # The owner's removal holds every lock; the code is exchanged meanwhile.
        exchanging = Racer(app_ctx, lambda: flow.exchange(code))
        pause_before(monkeypatch, members, "revoke_organization_tokens", exchanging)
        _remove_the_consultant(world)
        response = exchanging.finish()
        _assert_removed_with_no_live_family(world)
        assert _answer(response) == (400, "invalid_grant")
        assert exchanging.settled == "waiting", "the exchange did not wait for the removal"
    else:
        # The exchange has claimed the code and is about to open its family.
        removing = Racer(app_ctx, lambda: _remove_the_consultant(world))
        pause_before(monkeypatch, grants, "issue_tokens", removing)
        response = flow.exchange(code)
        removing.finish()
        _assert_removed_with_no_live_family(world)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert _answer(refresh(flow.http, response.get_json()["refresh_token"])) == (
            400,
            "invalid_grant",
        )
        assert removing.settled == "waiting", "the removal did not wait for the exchange"


def _switch(flow, subject_token: str, organization: str):
    return flow.http.post(
        "/oauth/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "client_id": flow.client_id,
            "subject_token": subject_token,
            "subject_token_type": ACCESS,
            "organization": organization,
        },
    )


@pytest.mark.parametrize("last_chosen", ["globex", "acme"])
@pytest.mark.parametrize("first", ["removal", "switch"])
def test_a_member_removed_while_switching_into_the_partner_keeps_no_family_for_it(
    app_ctx, monkeypatch, world, flow, first, last_chosen
):
    # Signed in to Globex, the consultant switches to Acme as Acme's owner removes them.
    tokens = tokens_for(flow, world["consultant_email"], world["globex"])
    if last_chosen == "acme":
        # Acme chosen since in another browser: the switch has no choice to write, so
        # only its KEY SHARE lock on the account stands between it and the removal.
        db.session.execute(
            sa.update(User)
            .where(User.id == world["consultant"])
            .values(last_organization_id=world["acme"])
        )
        db.session.commit()

    def switch():
        return _switch(flow, tokens["access_token"], world["acme"])

    if first == "removal":
        switching = Racer(app_ctx, switch)
        pause_before(monkeypatch, members, "revoke_organization_tokens", switching)
        _remove_the_consultant(world)
        response = switching.finish()
        _assert_removed_with_no_live_family(world)
        assert _answer(response) == (400, "invalid_target")
        assert switching.settled == "waiting", "the switch did not wait for the removal"
    else:
        # The switch has read the roles again under the account's lock; its family is next.
        removing = Racer(app_ctx, lambda: _remove_the_consultant(world))
        pause_before(monkeypatch, token_exchange, "open_family", removing)
        response = switch()
        removing.finish()
        _assert_removed_with_no_live_family(world)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert _answer(refresh(flow.http, response.get_json()["refresh_token"])) == (
            400,
            "invalid_grant",
        )
        assert removing.settled == "waiting", "the removal did not wait for the switch"
    # The login into Globex, which the switch was made from, is not the removal's business.
    assert len(_live_families(world["consultant"], world["globex"])) == 1


# --- an owner's invitation racing the loss of their role ---------------------------------


def _two_owners() -> tuple[str, str, str]:
    """A partner with two owners, Ann and Bob: the partner's id, Ann's and Bob's."""
    acme = make_org("partner", "Acme")
    ann = make_user("partner", acme, "owner", email="ann@acme.example")
    bob = make_user("partner", acme, "owner", email="bob@acme.example")
    db.session.commit()
    return acme.id, ann.id, bob.id


def _pending_invitations() -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Invitation).where(Invitation.revoked_at.is_(None))
    )


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_an_invitation_by_an_owner_who_lost_the_role_meanwhile_is_refused(
    app_ctx, monkeypatch, change
):
    """Bob's request passed the token check as owner; Ann's change commits before it holds
    Bob's account: it is judged by his role now and refused, and nothing is pending."""
    acme_id, ann, bob = _two_owners()
    bobs_membership = _membership_ids(acme_id)[bob]
    anns = Racer(app_ctx, lambda: _change(change, _actor(acme_id, ann), acme_id, bobs_membership))
    pause_before(monkeypatch, orgs_service, "hold_active_account", anns)

    with pytest.raises(Forbidden):
        invitations.create_invitation(
            _actor(acme_id, bob), acme_id, "bobs.alt@example.com", "owner"
        )
    db.session.rollback()
    anns.finish()

    assert anns.settled == "done"
    assert _pending_invitations() == 0


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_an_invitation_waiting_on_an_owners_demotion_is_refused_after_it(
    app_ctx, monkeypatch, change
):
    """Ann's change holds every lock when Bob's invitation request holds his account: it
    waits for the change, then finds his role gone."""
    acme_id, ann, bob = _two_owners()
    bobs_membership = _membership_ids(acme_id)[bob]
    inviting = Racer(
        app_ctx,
        lambda: invitations.create_invitation(
            _actor(acme_id, bob), acme_id, "bobs.alt@example.com", "owner"
        ),
    )
    pause_before(monkeypatch, members, "revoke_organization_tokens", inviting)

    _change(change, _actor(acme_id, ann), acme_id, bobs_membership)

    with pytest.raises(Forbidden):
        inviting.finish()
    assert inviting.settled == "waiting"
    assert _pending_invitations() == 0


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_an_invitation_that_held_the_owner_first_is_revoked_with_the_role(
    app_ctx, monkeypatch, change
):
    """Bob's invitation holds his account before Ann's change locks it: the change waits for
    the invitation to commit, then revokes it with the role."""
    acme_id, ann, bob = _two_owners()
    bobs_membership = _membership_ids(acme_id)[bob]
    anns = Racer(app_ctx, lambda: _change(change, _actor(acme_id, ann), acme_id, bobs_membership))
    pause_after(monkeypatch, orgs_service, "hold_active_account", anns)

    invitations.create_invitation(_actor(acme_id, bob), acme_id, "bobs.alt@example.com", "owner")
    anns.finish()

    assert anns.settled == "waiting"
    assert _pending_invitations() == 0


def _change(change: str, actor: Actor, partner_id: str, membership_id: str) -> None:
    if change == "demote":
        members.change_role(actor, partner_id, membership_id, "member")
    else:
        members.remove_member(actor, partner_id, membership_id)


# --- changes in two partners at once ------------------------------------------------------


def test_one_person_leaving_two_partners_at_once_queues_instead_of_deadlocking(
    app_ctx, monkeypatch
):
    acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
    make_user("partner", acme, "owner")
    make_user("partner", globex, "owner")
    consultant = make_user("partner", acme, "member")
    db.session.add(Membership.create(consultant, globex, "member"))
    db.session.commit()
    acme_id, globex_id, person = acme.id, globex.id, consultant.id
    leaving_globex = Racer(
        app_ctx,
        lambda: members.remove_member(
            _actor(globex_id, person, "member"), globex_id, _membership_ids(globex_id)[person]
        ),
    )
    pause_after(monkeypatch, members, "_hold_accounts", leaving_globex)

    members.remove_member(
        _actor(acme_id, person, "member"), acme_id, _membership_ids(acme_id)[person]
    )
    leaving_globex.finish()

    assert leaving_globex.settled == "waiting"
    db.session.expire_all()
    assert db.session.get(User, person).memberships == []


def test_two_owners_removing_each_other_from_two_partners_queue_instead_of_deadlocking(
    app_ctx, monkeypatch
):
    """Ann removes Bob from Acme while Bob removes Ann from Globex: the two changes lock the
    same two accounts, in the order of their ids, so one waits for the other."""
    acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
    ann = make_user("partner", acme, "owner")
    bob = make_user("partner", acme, "owner")
    make_user("partner", acme, "owner")
    make_user("partner", globex, "owner")
    db.session.add_all(
        [Membership.create(ann, globex, "owner"), Membership.create(bob, globex, "owner")]
    )
    db.session.commit()
    acme_id, globex_id, ann_id, bob_id = acme.id, globex.id, ann.id, bob.id
    bobs = Racer(
        app_ctx,
        lambda: members.remove_member(
            _actor(globex_id, bob_id), globex_id, _membership_ids(globex_id)[ann_id]
        ),
    )
    pause_after(monkeypatch, members, "_hold_accounts", bobs)

    members.remove_member(_actor(acme_id, ann_id), acme_id, _membership_ids(acme_id)[bob_id])
    bobs.finish()

    assert bobs.settled == "waiting"
    assert bob_id not in _roles(acme_id) and ann_id not in _roles(globex_id)


# --- what a person removed meanwhile may still create -------------------------------------


def _removed_persons_write(kind: str, partner_id: str, person: str):
    """A write that leaves something lasting, as the person (a token saying owner) sends it,
    and how to count what it created."""
    actor = _actor(partner_id, person)
    if kind == "oauth_client":
        return (
            lambda: oauth_clients.create_partner_client(actor, partner_id, name="Exfiltration"),
            lambda: db.session.scalar(sa.select(sa.func.count()).select_from(OAuthClient)),
        )
    if kind == "webhook":
        return (
            lambda: webhooks.set_endpoint(actor, partner_id, "https://hooks.attacker.example/x"),
            lambda: db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)),
        )
    business = make_org("client", "Alpha Shoes", onboarding_partner_id=partner_id)
    channel = make_channel(business, "live")
    db.session.commit()
    make_grant(business, db.session.get(Organization, partner_id), [channel])
    channel_id = channel.id
    return (
        lambda: apikeys.create_key(actor, "partner", partner_id, channel_id),
        lambda: db.session.scalar(sa.select(sa.func.count()).select_from(ChannelApiKey)),
    )


@pytest.mark.parametrize("kind", ["oauth_client", "webhook", "api_key"])
def test_a_person_removed_between_the_token_check_and_the_write_creates_nothing(
    app_ctx, monkeypatch, kind
):
    """Bob's request passed the token check as owner; Ann removes him before it holds his
    account: it is judged by his roles now, and nothing lasting is left for him."""
    acme_id, ann, bob = _two_owners()
    write, created = _removed_persons_write(kind, acme_id, bob)
    anns = Racer(
        app_ctx,
        lambda: members.remove_member(_actor(acme_id, ann), acme_id, _membership_ids(acme_id)[bob]),
    )
    held = apikeys if kind == "api_key" else orgs_service
    pause_before(
        monkeypatch,
        held,
        "_hold_active_account" if kind == "api_key" else "hold_active_account",
        anns,
    )

    with pytest.raises(Forbidden):
        write()
    db.session.rollback()
    anns.finish()

    assert anns.settled == "done"
    db.session.expire_all()
    assert created() == 0
