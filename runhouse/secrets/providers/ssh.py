"""SSH: a key pair, the private key with mode 600."""

from runhouse.secrets.base import Provider
from runhouse.secrets.formats import KeyPair


class SSH(Provider):
    """An SSH key pair: the first of ``~/.ssh/id_ed25519`` and ``~/.ssh/id_rsa`` (or the key
    given as ``path``), with its ``.pub`` beside it; written under the same name."""

    name = "ssh"
    required = ("private_key",)
    file = KeyPair(("~/.ssh/id_ed25519", "~/.ssh/id_rsa"))
