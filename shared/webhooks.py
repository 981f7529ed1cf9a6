"""Outbound calls to URLs users give us (webhooks, Web Push endpoints), without SSRF.

`check_url` resolves the host once and refuses private, loopback, link-local, reserved and
metadata addresses (unless WEBHOOK_ALLOW_PRIVATE=true; 169.254.169.254 never); `pinned_session`
then connects to exactly the address that was checked, so a DNS answer that changes between
the check and the connection (DNS rebinding) cannot redirect the call. Redirects are never
followed. The api checks at creation, the worker again at every delivery.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from shared.settings import Settings

# The cloud metadata service (AWS, GCP, Azure, OpenStack) and its IPv6 twin: refused always.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why (shown to the user at creation)."""


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    host: str
    port: int
    address: str  # the IP address that was checked, and the one to connect to


def check_url(url: str, settings: Settings) -> CheckedUrl:
    """Parse and resolve `url`; raise UnsafeUrl unless every address it resolves to is public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a URL: {exc}.") from None
    allowed = ("https", "http") if settings.webhook_allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeUrl("Only https:// URLs are allowed.")
    if not parts.hostname:
        raise UnsafeUrl("The URL names no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("Credentials in the URL are not allowed; the signature authenticates us.")
    if port == 0:
        raise UnsafeUrl("Port 0 is not a port.")
    port = port or (443 if parts.scheme == "https" else 80)
    if port not in PORTS and not settings.webhook_allow_private:
        raise UnsafeUrl("Only ports 443 and 80 are allowed.")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):  # ValueError: a NUL in the name
        raise UnsafeUrl(f"The host {parts.hostname!r} does not resolve.") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(_refusal(each, settings) for each in (address, *_embedded(address))):
            # Which address, or what kind, is not said: the answer would map our internal DNS.
            raise UnsafeUrl("The URL's host is not a public address.")
        addresses.append(str(address))
    if not addresses:
        raise UnsafeUrl(f"The host {parts.hostname!r} does not resolve.")
    return CheckedUrl(url=url, host=parts.hostname, port=port, address=addresses[0])


PORTS = (443, 80)  # anything else only with WEBHOOK_ALLOW_PRIVATE (tests)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded(address) -> list:
    """The IPv4 addresses an IPv6 address reaches through a translator or tunnel:
    NAT64, 6to4 and Teredo (IPv4-mapped ones were unwrapped by the caller)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = []
    if any(address in network for network in NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)  # (server, client)
    return found


def _refusal(address, settings: Settings) -> str | None:
    if address in METADATA:
        return "the cloud metadata"
    if settings.webhook_allow_private:
        return None
    for kind, test in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                       ("a private", address.is_private), ("a multicast", address.is_multicast),
                       ("a reserved", address.is_reserved), ("an unspecified", address.is_unspecified)):
        if test:
            return kind
    if not address.is_global:
        return "a non-public"
    return None


class _PinnedAdapter(HTTPAdapter):
    """Connects to the checked address while TLS (SNI, certificate) and Host name the host."""

    def __init__(self, checked: CheckedUrl):
        self.checked = checked
        super().__init__(max_retries=0)

    def add_headers(self, request, **kwargs):
        # The pool is opened to the address: name the host, or virtual hosting sends us astray.
        request.headers["Host"] = urlsplit(request.url).netloc

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        parts = urlsplit(request.url)
        if parts.hostname != self.checked.host:
            raise requests.ConnectionError("a request left the checked host")
        if parts.scheme == "https":
            pool = HTTPSConnectionPool(
                self.checked.address, self.checked.port, server_hostname=self.checked.host,
                assert_hostname=self.checked.host if verify else False,
                cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                ca_certs=verify if isinstance(verify, str) else certifi.where(),
            )
        else:
            pool = HTTPConnectionPool(self.checked.address, self.checked.port)
        return pool


class _NoRedirects(requests.Session):
    """Answers a redirect as it is (its status is the outcome), whatever the caller asks."""

    def send(self, request, **kwargs):
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def pinned_session(checked: CheckedUrl) -> requests.Session:
    """A requests session whose every connection goes to `checked.address`, with no proxy."""
    session = _NoRedirects()
    session.trust_env = False  # no HTTP(S)_PROXY: the proxy would resolve the name again
    adapter = _PinnedAdapter(checked)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
