"""What a reader sees: figures, tables and generated prose from stored results and their
analysis, rendered as Markdown and self-contained HTML (runs, lr-find, studies)."""
