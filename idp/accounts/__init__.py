"""User identities: one account per email address across every hub."""
