"""Where alert messages may go: so a destination is no door into the dashboard's own network.

Checked when a destination is saved AND before every send (a name may resolve elsewhere by
then); the send then connects to the addresses checked here, never resolving the name again
(pinned.py: no DNS rebinding between the check and the connection). Always refused:
link-local addresses (169.254.0.0/16, fe80::/10) and the cloud metadata endpoints
(169.254.169.254, fd00:ec2::254, metadata.google.internal), unspecified, multicast and
reserved addresses. Refused unless allowed: plain http (ALERTS_ALLOW_HTTP, allowed outside
production), this machine (ALERTS_ALLOW_LOOPBACK, for tests and development) and private
networks (ALERTS_ALLOW_PRIVATE, allowed outside production). Senders never follow redirects.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"),
                                ipaddress.ip_address("fd00:ec2::254")})

Resolver = Callable[[str, int], list[str]]


class PolicyError(ValueError):
    """The target is refused; the message says why (never the secret part of a URL)."""


def resolve(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise PolicyError(f"the host {host} does not resolve") from exc
    # The resolver's order (RFC 6724 preference), without repeats: the send tries them so.
    return list(dict.fromkeys(info[4][0] for info in found))


def check_address(address: str, config: Mapping) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        raise PolicyError("a cloud metadata address is never a destination")
    if ip.is_link_local:
        raise PolicyError("link-local addresses are never a destination")
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        raise PolicyError("that address is not a destination")
    if ip.is_loopback:
        if not config.get("ALERTS_ALLOW_LOOPBACK"):
            raise PolicyError("this machine's own addresses are not allowed as a destination")
        return
    if ip.is_private and not config.get("ALERTS_ALLOW_PRIVATE"):
        raise PolicyError("private network addresses are not allowed as a destination "
                          "(ALERTS_ALLOW_PRIVATE)")


def check_host(host: str, port: int, config: Mapping,
               resolver: Resolver = resolve) -> list[str]:
    """Every address `host` resolves to must pass; returns them."""
    host = (host or "").strip().rstrip(".").lower()
    if not host:
        raise PolicyError("a host is required")
    if host in METADATA_HOSTS:
        raise PolicyError("a cloud metadata address is never a destination")
    addresses = resolver(host, port)
    if not addresses:
        raise PolicyError(f"the host {host} does not resolve")
    for address in addresses:
        check_address(address, config)
    return addresses


def check_url(url: str, config: Mapping, resolver: Resolver = resolve) -> list[str]:
    """A webhook (or Telegram API) URL: https (or allowed http), a host that passes; returns
    the host's checked addresses (the only ones a send may connect to)."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError as exc:
        raise PolicyError("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise PolicyError("the URL must start with https://")
    if scheme == "http" and not config.get("ALERTS_ALLOW_HTTP"):
        raise PolicyError("the URL must use https:// (ALERTS_ALLOW_HTTP allows http)")
    if parts.username or parts.password:
        raise PolicyError("credentials in the URL are not allowed")
    if not parts.hostname:
        raise PolicyError("the URL has no host")
    return check_host(parts.hostname, port or (443 if scheme == "https" else 80), config,
                      resolver)
