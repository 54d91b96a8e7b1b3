"""Policy: scopes, grants, and what a principal may read."""
