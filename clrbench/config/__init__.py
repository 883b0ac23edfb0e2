"""What to train, validated once: the Workload, Experiment and its Plan of RunSpecs (run ids),
the lr-find sweep and study settings, the TOML shape and the presets as plain data."""
