"""Connections pinned to the addresses the outbound policy vetted (no DNS rebinding).

The policy resolves a destination's host and checks every address; a connection that resolved
the name again could reach another address (a name whose short-lived record turns to
127.0.0.1 or a private address between the check and the connect). So a send resolves once:
HTTP connects to the vetted addresses only, while the name still drives the Host header, TLS
SNI and certificate verification; SMTP likewise (STARTTLS checks the certificate against the
name). No proxy from the environment is used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection

NO_PROXY = {"http": None, "https": None, "all": None}  # None removes the environment's


class _Pinned:
    """Mixed into urllib3's connections: `_new_conn` (urllib3 2.x) connects to `pinned`, in
    order, instead of resolving `host`; everything else about the name is left as it is."""

    pinned: tuple[str, ...] = ()

    def _new_conn(self) -> socket.socket:
        failure: OSError | None = None
        for address in self.pinned:  # the next one when one fails, as urllib3 does
            try:
                return connection.create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as exc:
                failure = exc
        if isinstance(failure, TimeoutError):
            raise ConnectTimeoutError(self, "connect timed out") from failure
        raise NewConnectionError(self, "could not connect") from failure


class PinnedAdapter(HTTPAdapter):
    """requests' adapter whose pools connect to `addresses` only, whatever DNS says now."""

    def __init__(self, addresses: Sequence[str]):
        self.addresses = tuple(addresses)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        pinned = {"pinned": self.addresses}
        http = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), pinned)
        https = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), pinned)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def post(url: str, addresses: Sequence[str], **kwargs) -> requests.Response:
    """`requests.post` connecting only to `addresses` (the policy's, for the URL's host)."""
    with requests.Session() as session:
        adapter = PinnedAdapter(addresses)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session.post(url, proxies=NO_PROXY, **kwargs)


class PinnedSMTP(smtplib.SMTP):
    """smtplib's client connecting to `addresses` only; `host` stays the name (STARTTLS
    verifies the certificate against it)."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], timeout: float):
        self.pinned = tuple(addresses)
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host, port, timeout):
        failure: OSError | None = None
        for address in self.pinned:
            try:
                return socket.create_connection((address, port), timeout,
                                                self.source_address)
            except OSError as exc:
                failure = exc
        raise failure or OSError("no address to connect to")
