"""Command runners: run shell commands and sync files on a machine (local, ssh)."""
