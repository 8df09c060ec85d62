"""Google Cloud: gcloud's application default credentials (a JSON file)."""

from runhouse.secrets.base import Provider
from runhouse.secrets.formats import JsonFile


class GCP(Provider):
    """The JSON of ``gcloud auth application-default login`` (or a service account key, named
    by ``GOOGLE_APPLICATION_CREDENTIALS``); written where Google's libraries look for it."""

    name = "gcp"
    required = ("type",)
    file = JsonFile(("~/.config/gcloud/application_default_credentials.json",))
    path_variable = "GOOGLE_APPLICATION_CREDENTIALS"
