"""train: see README code map."""
