"""Built-in behaviour, shipped as ordinary plugins (they can be blocked like any other)."""
