"""Statistics on stored results: frames in, frames out, no I/O and no prose (summaries,
comparisons, the lr-find reading and its divergence rule, the workload's target)."""
