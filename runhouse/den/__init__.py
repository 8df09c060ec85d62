"""Den, the self-hosted metadata server: names, versions, sharing, groups and secrets.

    settings.py     DenSettings: database URL, data folder, address, TLS, body limit
    app.py          create_app(settings, db): the FastAPI app (routers, errors, body limit)
    api/            one router per noun: health, resources (+ history, folders), grants
                    (+ visibility), users (+ tokens, whoami), groups (+ members, defaults),
                    defaults (a user's, merged with their groups'), audit (the log's reader)
    audit.py        the audit log: recording writes, logins and rejected tokens
    permissions.py  decide(): who may do what (pure); access.py loads its facts
    auth.py         tokens rhd_<prefix>_<secret>, stored as sha256; resolving a caller
    db/             models, sessions (SQLite write lock, PostgreSQL row locks), migrations
    bootstrap.py    opening the database at start (checks, migrations, the first admin)
    server.py       serving with uvicorn; process.py: background start, status, stop

Nothing here is imported by the client side (``runhouse``, ``runhouse.names``).
"""
