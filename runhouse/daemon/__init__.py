"""The cluster daemon: an ASGI app on uvicorn and the env workers it manages.

Never imports client-side code (``runhouse.resources``, ``runhouse.client``, ``runhouse.cli``).
"""
