"""Domain-free toolkit shared by the auth, media and news services.

settings, database, problems (problem+json errors), request_id, logs, health, ratelimit,
jwt (the one place that touches JWT libraries), security (bearer principals), pagination,
client_address, clock, http_cache and app (the service app factory).
"""
