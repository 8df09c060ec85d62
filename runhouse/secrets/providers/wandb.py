"""Weights & Biases: an API key in ``WANDB_API_KEY``."""

from runhouse.secrets.base import Provider, env_names


class WandB(Provider):
    """An API key for Weights & Biases."""

    name = "wandb"
    variables = env_names(api_key="WANDB_API_KEY")
