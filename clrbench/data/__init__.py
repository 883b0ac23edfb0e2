"""data: see README code map."""
