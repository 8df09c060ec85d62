"""Hugging Face: the token ``huggingface-cli login`` keeps."""

from runhouse.secrets.base import Provider, env_names
from runhouse.secrets.formats import TokenFile


class HuggingFace(Provider):
    """A Hugging Face token: ``~/.cache/huggingface/token``, or ``HF_TOKEN``."""

    name = "huggingface"
    variables = env_names(token="HF_TOKEN")
    file = TokenFile(("~/.cache/huggingface/token",), "token")
