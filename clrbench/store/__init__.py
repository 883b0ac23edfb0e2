"""The results on disk: the tidy schema, the run record (run.json), the manifest, loading
folders as typed frames, exports, and the one atomic-write helper."""
