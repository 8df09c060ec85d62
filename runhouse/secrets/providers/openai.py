"""OpenAI: an API key in ``OPENAI_API_KEY``."""

from runhouse.secrets.base import Provider, env_names


class OpenAI(Provider):
    """An API key for OpenAI."""

    name = "openai"
    variables = env_names(api_key="OPENAI_API_KEY")
