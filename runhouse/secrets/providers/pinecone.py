"""Pinecone: an API key in ``PINECONE_API_KEY`` (and, for older indexes, its environment)."""

from runhouse.secrets.base import Provider, env_names


class Pinecone(Provider):
    """Pinecone's API key, and ``PINECONE_ENVIRONMENT`` when set."""

    name = "pinecone"
    variables = env_names(api_key="PINECONE_API_KEY", environment="PINECONE_ENVIRONMENT")
    required = ("api_key",)
