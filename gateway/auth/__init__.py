"""Authentication: bearer tokens (JWT via JWKS, or opaque via introspection) → a principal."""
