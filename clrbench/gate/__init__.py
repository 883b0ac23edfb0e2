"""gate: see README code map."""
