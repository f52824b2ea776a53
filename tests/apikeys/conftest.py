"""Factories for keys and grants, shared by the API-key and consent tests."""
