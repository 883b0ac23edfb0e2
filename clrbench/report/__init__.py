"""report: see README code map."""
