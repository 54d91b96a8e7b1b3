"""fedgate: a federated GraphQL gateway over departmental databases."""

__version__ = "0.1.0"
