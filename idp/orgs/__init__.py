"""Organizations (partner, client, support), memberships and partner invitations."""
