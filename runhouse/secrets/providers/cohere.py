"""Cohere: an API key in ``COHERE_API_KEY``."""

from runhouse.secrets.base import Provider, env_names


class Cohere(Provider):
    """An API key for Cohere."""

    name = "cohere"
    variables = env_names(api_key="COHERE_API_KEY")
