"""The catalog: what each department holds, and the GraphQL schema generated from it."""
