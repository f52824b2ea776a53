"""Asymmetric signing keys: encrypted at rest, published as a JWKS, rotated without surprises."""
