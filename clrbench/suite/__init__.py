"""suite: see README code map."""
