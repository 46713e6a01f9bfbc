"""The auth service: accounts, emailed codes, tokens, partner API clients, and the mail outbox."""
