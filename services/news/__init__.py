"""The news service: articles, full-text search, JSON Feed and Atom, and the editor API."""
