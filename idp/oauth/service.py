"""OAuth services used by other concepts: token revocation (see ``revocation``)."""

from idp.oauth.revocation import revoke_family, revoke_user_tokens

__all__ = ["revoke_family", "revoke_user_tokens"]
