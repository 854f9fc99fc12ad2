"""Mail that must never be lost: message assembly (messages), the transactional outbox, preferences, digests and the relay to SMTP."""
