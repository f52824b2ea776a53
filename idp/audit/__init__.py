"""Append-only audit log of every security-relevant change."""
