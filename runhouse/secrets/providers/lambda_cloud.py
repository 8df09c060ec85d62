"""Lambda Cloud: an API key in ``~/.lambda_cloud/lambda_keys``."""

from runhouse.secrets.base import Provider, env_names
from runhouse.secrets.formats import KeyValueFile


class LambdaCloud(Provider):
    """A Lambda Cloud API key (``api_key = ...`` in its keys file), or ``LAMBDA_API_KEY``."""

    name = "lambda"
    variables = env_names(api_key="LAMBDA_API_KEY")
    file = KeyValueFile(("~/.lambda_cloud/lambda_keys",), {"api_key": "api_key"})
