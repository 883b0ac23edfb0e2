"""What to train, validated once: the Workload, Experiment and its Plan of RunSpecs (run ids),
the lr-find sweep settings, the TOML shape and the presets as plain data."""
