"""What a reader sees: figures, tables and generated prose from stored results and their
analysis, rendered as Markdown and self-contained HTML (the page, the run report, lr-find;
the study and the cross-workload comparison render theirs in their own folders)."""
