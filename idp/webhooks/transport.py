"""POSTing a webhook so that, in production, it connects only to addresses that were checked.

Checking a host's addresses and then letting the HTTP client look the name up
again leaves a gap: DNS with a zero TTL can answer a public address to the check
and 127.0.0.1 to the connection (DNS rebinding). Here the connection itself
resolves the name once, refuses it when any answer is internal, and opens its
socket to those very answers. Only the socket is made differently: TLS still
sends the URL's host name (SNI) and verifies the certificate against it, and the
Host header names it. Proxies from the environment are ignored (a proxy would
look the name up itself), and redirects are not followed.
"""

from __future__ import annotations

import socket
import sys

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from idp.webhooks import urls


class _PublicOnly:
    """For urllib3 connections: open the socket to the answers of one checked lookup."""

    def _new_conn(self) -> socket.socket:
        # urllib3's hook that opens the TCP socket (the TLS handshake comes after it);
        # in the stock one, create_connection looks the name up again. The hook is
        # urllib3's own (the same in 1.26 and 2.x); tests/webhooks/test_pinned_addresses.py
        # fails if a release stops calling it.
        try:
            answers = urls.resolve_public(self._dns_host, self.port)
        except (OSError, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        failure: OSError = OSError("the host has no address")
        for family, kind, proto, _, address in answers:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(failure, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from failure
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {failure}"
        ) from failure


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A requests adapter whose connections reach only public addresses, checked as they connect."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPConnectionPool,
            "https": _PublicHTTPSConnectionPool,
        }


def post(
    url: str,
    *,
    data: bytes,
    headers: dict[str, str],
    timeout: float,
    public_only: bool,
    verify: bool | str = True,
) -> requests.Response:
    """POST ``data`` and read only the status line and headers (the body is closed unread).

    With ``public_only`` (production), raise ``urls.InternalAddressError`` rather than
    connect when the host is or resolves to an internal address. Other failures
    raise ``requests.RequestException``. ``verify`` is requests' (a CA bundle path
    in tests).
    """
    with requests.Session() as session:
        session.trust_env = False
        if public_only:
            adapter = PublicOnlyAdapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        response = session.post(
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            verify=verify,
        )
        response.close()
        return response
