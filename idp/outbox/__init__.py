"""Transactional outbox: emails and webhooks written with their cause, delivered later."""
