"""Planning: a validated GraphQL operation becomes a plan of source statements (pure, no I/O)."""
