"""``den_auth``: callers who show a Den token, not the daemon's own, are let in when Den says
they may write the cluster's resource (a team shares one cluster, each with their own token).

    gate = DenGate("http://den:8900", "/acme/clusters/gpu", ttl=30)
    await gate.admit(scope, b"Bearer rhd_...")   # the username; or HTTPError 401, 403 or 503

The daemon's own token is checked before this and never needs Den. For any other token
Den is asked ``GET /v1/access/{path}`` with that token, from a thread (never on the event
loop), at most once per token per ``ttl`` seconds: answers are kept by the token's sha256
(a refusal for at most ``DENIED_TTL``), and concurrent requests with one token share one
question. So a share or a revocation in Den is honoured within ``ttl`` seconds. Only tokens
shaped like Den's (``rhd_<prefix>_<secret>``) are sent to Den: anything else is refused at
once, as a wrong token always was.

An admitted request's connection is kept open like one that showed the daemon's token:
the connection guards (``guards.py``) put a callback in the scope under ``VOUCH``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any
from urllib.parse import quote, urlsplit

from runhouse._version import __version__
from runhouse.daemon.asgi import HTTPError, Scope

log = logging.getLogger("runhouse.daemon")
VOUCH = "rh.vouch"  # scope key: the guards' callback that keeps an admitted connection open
DENIED_TTL = 5.0  # seconds a refusal is kept at most: a share is seen soon after it is made
MAX_ENTRIES = 10_000  # answers kept at most (expired ones are dropped first when full)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
_QUESTIONS = 4  # questions to Den at once, at most (a flood of tokens waits its turn)
_DEN_TOKEN = re.compile(rb"^[Bb][Ee][Aa][Rr][Ee][Rr] +(rhd_[a-z0-9]{8}_[A-Za-z0-9_\-]{1,200})$")


@dataclass(frozen=True)
class Verdict:
    """Den's answer for one token: 200 (may write), 401 (token refused) or 403."""

    status: int
    message: str = ""
    username: str | None = None


class DenGate:
    """Admits callers whose Den token gives them write access to ``resource``."""

    def __init__(self, den_url: str, resource: str, ttl: float, ca_cert: str | None = None) -> None:
        parts = urlsplit(den_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--den-url {den_url!r} is not an http(s) URL")
        self.url = den_url.rstrip("/")
        self.resource = "/" + resource.strip("/")
        self.ttl = ttl
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._target = parts.path.rstrip("/") + "/v1/access/" + quote(self.resource[1:], safe="/")
        self._tls = _tls_context(ca_cert) if self._https else None
        self._answers: dict[bytes, tuple[float, Verdict]] = {}
        self._pending: dict[bytes, asyncio.Future[Verdict]] = {}
        self._pool = ThreadPoolExecutor(_QUESTIONS, thread_name_prefix="rh-den-auth")

    async def admit(self, scope: Scope, authorization: bytes) -> str:
        """Let the request in if its token may write the cluster in Den (its user's name);
        else raise the HTTP error to answer."""
        found = _DEN_TOKEN.match(authorization)
        if found is None:
            raise HTTPError(
                403,
                "AuthError",
                "wrong token for this daemon: send its own token, or a Den token (log in: "
                f"`runhouse login`) of a user with write access to {self.resource} in Den",
            )
        key = hashlib.sha256(authorization).digest()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > time.monotonic():
            verdict = kept[1]
        else:
            verdict = await self._ask(key, found.group(1).decode())
        if verdict.status != 200:
            raise HTTPError(verdict.status, "AuthError", verdict.message)
        vouch = scope.pop(VOUCH, None)
        if vouch is not None:
            vouch()
        return verdict.username or ""

    def close(self) -> None:
        """Stop the question threads (at shutdown)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _ask(self, key: bytes, token: str) -> Verdict:
        pending = self._pending.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(self._pool, self._question, token)
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        # Shielded: a caller who goes away does not cancel the question the others wait on.
        return await asyncio.shield(pending)

    def _settle(self, key: bytes, done: asyncio.Future[Verdict]) -> None:
        self._pending.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return  # Den unreachable: not kept, the next request asks again
        verdict = done.result()
        keep = self.ttl if verdict.status == 200 else min(self.ttl, DENIED_TTL)
        if keep <= 0:
            return
        now = time.monotonic()
        if len(self._answers) >= MAX_ENTRIES:
            for stale in [k for k, (until, _) in self._answers.items() if until <= now]:
                del self._answers[stale]
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
        self._answers[key] = (now + keep, verdict)
        if verdict.status == 200:
            log.info("den_auth: %s may write %s (per Den)", verdict.username, self.resource)

    def _question(self, token: str) -> Verdict:
        """Ask Den (in a thread) what the token's user may do with the cluster's resource."""
        status, raw = self._exchange(token)
        body = _parse(raw)
        message = str(body.get("message") or raw[:300].decode(errors="replace")).strip()
        if status == 200 and isinstance(body.get("username"), str):
            user = body["username"]
            if body.get("write") is True:
                return Verdict(200, username=user)
            return Verdict(
                403,
                f"user {user} has no write access to cluster {self.resource} in Den; ask its "
                f"owner to share it: c.share([{user!r}], access_level='write')",
                user,
            )
        if status == 401:
            return Verdict(401, f"Den at {self.url} refused the token: {message}")
        raise self._unavailable(f"it answered {status} to GET {self._target}: {message}")

    def _exchange(self, token: str) -> tuple[int, bytes]:
        conn: HTTPConnection
        if self._https:
            conn = HTTPSConnection(
                self._host, self._port, timeout=CONNECT_TIMEOUT, context=self._tls
            )
        else:
            conn = HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"runhouse-daemon/{__version__}",
        }
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(READ_TIMEOUT)  # the connect timeout was short on purpose
            conn.request("GET", self._target, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except ssl.SSLCertVerificationError as exc:
            raise self._unavailable(
                f"its TLS certificate is not trusted on this machine ({exc.verify_message}); "
                "point the den_ca_cert setting at Den's certificate here and restart the daemon"
            ) from None
        except (OSError, HTTPException) as exc:
            raise self._unavailable(str(exc) or type(exc).__name__) from None
        finally:
            conn.close()

    def _unavailable(self, reason: str) -> HTTPError:
        return HTTPError(
            503,
            "DenUnavailable",
            f"this daemon checks callers' tokens with Den at {self.url} (den_auth), and Den "
            f"cannot answer: {reason}. Check that Den runs and that the daemon's machine "
            "reaches it; the daemon's own token still works.",
            den_url=self.url,
        )


def _tls_context(ca_cert: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=os.path.expanduser(ca_cert) if ca_cert else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"the den_ca_cert setting ({ca_cert!r}) cannot be used as Den's certificate: {exc}; "
            "point it at Den's PEM certificate on this machine, or unset it"
        ) from None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
