"""Channel API keys: generated once, stored hashed, checked by the messaging gateway."""
