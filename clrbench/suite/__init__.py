"""Orchestration: a Plan's runs in worker processes (loky or Dask), resumable and failure-
isolated under one writer lock; provenance, progress, the lr-find sweep over seeds."""
