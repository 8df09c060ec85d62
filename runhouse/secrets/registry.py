"""Secret providers by name. Built-in ones are declared below as import paths, so asking for
one imports only its file; a ``Provider`` subclass defined anywhere registers itself.

    >>> provider_class("aws")
    <class 'runhouse.secrets.providers.aws.AWS'>
    >>> provider_class("awz")           # UnknownProviderError: Known providers: anthropic, ...
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from runhouse.exceptions import UnknownProviderError

if TYPE_CHECKING:
    from runhouse.secrets.base import Provider

_PACKAGE = "runhouse.secrets.providers"
BUILTIN: dict[str, str] = {
    "anthropic": f"{_PACKAGE}.anthropic:Anthropic",
    "aws": f"{_PACKAGE}.aws:AWS",
    "azure": f"{_PACKAGE}.azure:Azure",
    "cohere": f"{_PACKAGE}.cohere:Cohere",
    "gcp": f"{_PACKAGE}.gcp:GCP",
    "github": f"{_PACKAGE}.github:GitHub",
    "huggingface": f"{_PACKAGE}.huggingface:HuggingFace",
    "lambda": f"{_PACKAGE}.lambda_cloud:LambdaCloud",
    "langchain": f"{_PACKAGE}.langchain:LangChain",
    "openai": f"{_PACKAGE}.openai:OpenAI",
    "pinecone": f"{_PACKAGE}.pinecone:Pinecone",
    "ssh": f"{_PACKAGE}.ssh:SSH",
    "wandb": f"{_PACKAGE}.wandb:WandB",
}

_lock = threading.Lock()
_classes: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> None:
    """Record ``cls`` under its ``name`` (a later class of the same name replaces it)."""
    with _lock:
        _classes[cls.name] = cls


def known() -> list[str]:
    """Every provider name asked for may be."""
    with _lock:
        return sorted(set(BUILTIN) | set(_classes))


def provider_class(name: object) -> type[Provider]:
    """The provider called ``name`` (any case); ``UnknownProviderError`` lists the known."""
    key = name.lower() if isinstance(name, str) else None
    with _lock:
        cls = _classes.get(key) if key is not None else None
    if cls is None and key in BUILTIN:
        module, attr = BUILTIN[key].split(":")
        cls = getattr(importlib.import_module(module), attr)
    if cls is None:
        raise UnknownProviderError(name, known())
    return cls


def is_provider(name: object) -> bool:
    """Whether ``name`` names a known provider."""
    return isinstance(name, str) and name.lower() in known()
