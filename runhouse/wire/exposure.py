"""How a daemon is exposed: where it listens, whether it serves TLS, whether it wants a token.

Shared by both sides: the client turns a cluster's settings into the daemon's flags, and the
daemon parses those flags back and refuses an unsafe combination before it listens.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Exposure:
    """A daemon's listening address, TLS files and auth."""

    host: str = "127.0.0.1"
    tls: bool = False
    certfile: str | None = None  # on the daemon's machine; None: a generated self-signed one
    keyfile: str | None = None
    auth: bool = True  # a bearer token on every route but the health check
    insecure: bool = False  # allows no auth on a non-loopback address
    # den_auth: tokens other than the daemon's own are checked with this Den, and let in if
    # their user may write the cluster's resource at den_resource ("/acme/clusters/gpu").
    den_url: str | None = None
    den_resource: str | None = None

    def argv(self) -> list[str]:
        """The daemon's command-line flags for this exposure."""
        flags = ["--host", self.host]
        if self.tls:
            flags.append("--tls")
        if self.certfile and self.keyfile:
            flags += ["--certfile", self.certfile, "--keyfile", self.keyfile]
        if not self.auth:
            flags.append("--no-auth")
        if self.insecure:
            flags.append("--insecure")
        if self.den_url:
            flags += ["--den-url", self.den_url]
        if self.den_resource:
            flags += ["--den-resource", self.den_resource]
        return flags

    def problem(self) -> str | None:
        """Why the daemon must not start with this exposure, or None."""
        if bool(self.certfile) != bool(self.keyfile):
            return "give both --certfile and --keyfile (or neither, for a self-signed one)"
        if self.certfile and not self.tls:
            return "--certfile/--keyfile need --tls"
        if not self.auth and not is_loopback(self.host) and not self.insecure:
            return (
                f"refusing to listen on {self.host} without auth: anyone who reaches it could "
                "run code as this user. Drop --no-auth (clients then send the daemon's token), "
                "or add --insecure if this network is trusted."
            )
        return self._den_problem()

    def _den_problem(self) -> str | None:
        if self.den_resource and not self.den_url:
            return "--den-resource needs --den-url (the Den that knows who may use the cluster)"
        if not self.den_url:
            return None
        if not self.den_url.startswith(("http://", "https://")):
            return f"--den-url {self.den_url!r} is not an http(s) URL"
        if not self.auth:
            return "den_auth checks callers' tokens, so it needs auth: drop --no-auth/insecure"
        if not self.den_resource or not self.den_resource.startswith("/"):
            return (
                "den_auth lets in the users who may write the cluster's resource in Den, and "
                "this cluster has no address in Den: save it under a Den folder first "
                "(c.save('/<your username>/clusters/<name>') or a group's folder), then start it"
            )
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (only this machine can connect)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The exposure flags (``--host`` excepted), for the daemon and ``runhouse start``."""
    parser.add_argument("--tls", action="store_true", help="serve HTTPS")
    parser.add_argument("--certfile", help="TLS certificate (default: a generated self-signed one)")
    parser.add_argument("--keyfile", help="TLS private key for --certfile")
    parser.add_argument(
        "--no-auth", action="store_true", help="serve without a token (loopback only)"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="allow --no-auth on a non-loopback address"
    )
    parser.add_argument(
        "--den-url", help="den_auth: also let in Den users who may write --den-resource"
    )
    parser.add_argument("--den-resource", help="den_auth: the cluster's address in Den")


def from_arguments(args: argparse.Namespace) -> Exposure:
    """The exposure parsed flags describe."""
    return Exposure(
        host=args.host,
        tls=args.tls,
        certfile=args.certfile,
        keyfile=args.keyfile,
        auth=not args.no_auth,
        insecure=args.insecure,
        den_url=args.den_url,
        den_resource=args.den_resource,
    )
