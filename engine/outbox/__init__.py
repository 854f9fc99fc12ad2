"""Mail that is never lost: each message kind's recipients, key, context and links
(``messages``), the transactional outbox (``enqueue``), preferences, digests, the relay.
"""
