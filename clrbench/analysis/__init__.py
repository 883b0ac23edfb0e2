"""analysis: see README code map."""
