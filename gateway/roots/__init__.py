"""The kinds of root field, one module each: how each is planned, costed, changed by passes and run."""
