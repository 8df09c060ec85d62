"""Amazon Web Services: an access key pair (and a session token, for temporary ones)."""

from runhouse.secrets.base import Provider, env_names
from runhouse.secrets.formats import IniFile


class AWS(Provider):
    """AWS credentials: the ``[default]`` profile of ``~/.aws/credentials``, or ``AWS_*``."""

    name = "aws"
    variables = env_names(
        access_key="AWS_ACCESS_KEY_ID",
        secret_key="AWS_SECRET_ACCESS_KEY",
        session_token="AWS_SESSION_TOKEN",
    )
    required = ("access_key", "secret_key")
    file = IniFile(
        ("~/.aws/credentials",),
        section="default",
        options={
            "access_key": "aws_access_key_id",
            "secret_key": "aws_secret_access_key",
            "session_token": "aws_session_token",
        },
    )
