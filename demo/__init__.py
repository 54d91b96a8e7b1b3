"""The demo federation: synthetic departments for fedgate."""
