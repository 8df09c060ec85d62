"""Microsoft Azure: a service principal, or a storage connection string, in ``AZURE_*``."""

from runhouse.secrets.base import Provider, env_names


class Azure(Provider):
    """Azure credentials as the Azure SDKs read them from the environment (any of them)."""

    name = "azure"
    variables = env_names(
        subscription_id="AZURE_SUBSCRIPTION_ID",
        tenant_id="AZURE_TENANT_ID",
        client_id="AZURE_CLIENT_ID",
        client_secret="AZURE_CLIENT_SECRET",
        connection_string="AZURE_STORAGE_CONNECTION_STRING",
    )
    required = ()
