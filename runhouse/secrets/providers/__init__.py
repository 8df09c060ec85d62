"""One file per secret provider, each a ``Provider`` subclass declaring its data; the
registry (``runhouse/secrets/registry.py``) imports a file only when its provider is asked for."""
