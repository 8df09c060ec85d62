"""LangChain (LangSmith): an API key in ``LANGCHAIN_API_KEY``."""

from runhouse.secrets.base import Provider, env_names


class LangChain(Provider):
    """An API key for LangChain (LangSmith)."""

    name = "langchain"
    variables = env_names(api_key="LANGCHAIN_API_KEY")
