"""The command line: ``clrbench.cli.main`` parses and dispatches; one module per command
(argparse and printing only)."""
