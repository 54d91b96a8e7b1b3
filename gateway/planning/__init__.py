"""Planning: what every kind of root field builds its statements with (pure, no I/O): the operation's
planning context, arguments with provenance, filters and orders, statement shapes, the field guard."""
