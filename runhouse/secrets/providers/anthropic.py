"""Anthropic: an API key in ``ANTHROPIC_API_KEY``."""

from runhouse.secrets.base import Provider, env_names


class Anthropic(Provider):
    """An API key for Anthropic."""

    name = "anthropic"
    variables = env_names(api_key="ANTHROPIC_API_KEY")
