"""store: see README code map."""
