"""Source adapters: one module per source kind behind :class:`adapters.base.SourceAdapter`."""
