"""Partner webhooks: endpoints, signed events through the outbox, delivery attempts."""
