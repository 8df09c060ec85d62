"""Data: storage systems (local disk, buckets) and moving files between them and clusters.

``storage.py`` is the interface, ``registry.py`` finds a system by scheme, and
``systems/`` holds one small module per system. Both sides import this package: the client,
and clusters' workers, which do cluster <-> bucket transfers themselves.
"""
