"""Secrets: where credentials come from (providers) and where their values are kept (backends).

    providers/   one small file per provider (aws, gcp, ssh, openai, ...): its files and
                 variables, declared as data on a ``Provider`` subclass (``base.py``)
    formats.py   the file layouts providers use (INI, JSON, a bare token, key=value, key pairs)
    registry.py  providers by name, imported only when asked for
    backends/    where saved values live: ``den.py`` (on Den, sealed; logged in),
                 ``local.py`` (~/.rh/secrets, mode 600), ``vault.py`` (Vault KV v2, hvac)

The resources users hold are ``rh.Secret`` and ``rh.ProviderSecret``
(``runhouse/resources/secret.py``); this package knows nothing of clusters or stores' configs.
"""
