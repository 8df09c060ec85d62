"""Engines start env workers and carry requests to them: ``process`` (here), later ``ray``."""
