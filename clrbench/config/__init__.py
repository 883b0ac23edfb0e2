"""config: see README code map."""
