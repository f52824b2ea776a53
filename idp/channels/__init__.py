"""WhatsApp Business Accounts and their channels (one phone number each)."""
