"""Which URLs the server may POST Subscription notifications to (a guard against SSRF).

A `channel.endpoint` is accepted only when all of these hold:
- it is a string of at most 2048 characters, an absolute URL with a scheme and a host, with no
  whitespace, control characters or backslashes, no user name or password, no fragment, a port
  (if given) from 1 to 65535, and no `.` or `..` path segment (also percent-encoded); a host
  name is labels of letters, digits, `-` and `_`, unchanged by Unicode (NFKC) normalisation;
- its scheme is https, or http when the host is loopback (127.0.0.0/8, ::1, `localhost`);
- it matches an entry of the allow-list: same scheme; same host (case-insensitive, one
  trailing dot dropped, internationalised names compared as given, lower-case), or any host
  with one or more labels in front of a `*.` entry's domain; the entry's port (its scheme's
  default when it gives none, any port for `:*`); and a path under the entry's path prefix,
  on a segment boundary (`/hooks` covers `/hooks`, `/hooks/` and `/hooks/x`, not `/hooksx`);
- when the host is an IP literal (`localhost` counting as 127.0.0.1), the address is public,
  or inside one of the configured networks. An IPv4 address an IPv6 one carries (mapped,
  NAT64, 6to4, IPv4-compatible) must pass too. A host whose last label is a number must be a
  plain dotted quad: forms a resolver would read as an address (`0x7f.1`, `127.1`,
  `2130706433`, `0177.0.0.1`) are refused rather than misread.

A host name is checked again at delivery: `resolved_addresses` gives what it resolves to and
`address_issue` refuses it when any of those is not public and not in the networks. Redirects
are the deliverer's business: it must not follow them.
"""

import asyncio
import re
import socket
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import unquote, urlsplit

from app.errors import Issue

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
LOOPBACK_NAME = "localhost"
LOOPBACK_ADDRESS = IPv4Address("127.0.0.1")  # what `localhost` counts as
_NAT64 = IPv6Network("64:ff9b::/96")  # carries an IPv4 address in its last 32 bits
_NOT_PUBLIC = (IPv6Network("64:ff9b:1::/48"),)  # local-use NAT64, global to `ipaddress` 3.11
_HEX_NUMBER = re.compile(r"0x[0-9a-f]*")
_MALFORMED = "value"
_NOT_ALLOWED = "business-rule"

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class AllowedEndpoint:
    """One allow-list entry: a scheme, a host (`*.` for labels in front), a port, a path."""

    scheme: str
    host: str  # lower-case; an IPv6 address without brackets
    port: int | None  # None: any port
    path_prefix: str = "/"


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL read as far as the checks need: scheme, host, port (defaulted), path."""

    scheme: str
    host: str  # lower-case, no trailing dot; an IPv6 address without brackets
    address: Address | None  # the host as an address, when it is an IP literal
    port: int
    path: str


class _Refused(ValueError):
    """Why a URL (or allow-list entry) is refused, and the OperationOutcome code for it."""

    def __init__(self, reason: str, code: str = _MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def parse_allow_list(entries: Sequence[str]) -> tuple[AllowedEndpoint, ...]:
    """The allow-list `entries` give; ValueError naming an entry that is not one."""
    allowed: list[AllowedEndpoint] = []
    for entry in entries:
        try:
            allowed.append(_allowed_endpoint(entry.strip()))
        except _Refused as refusal:
            raise ValueError(f"allow-list entry {entry!r} {refusal.reason}") from None
    return tuple(allowed)


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """The networks `entries` give (a bare address: one host); ValueError naming a bad one."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ip_network(entry.strip()))
        except ValueError as error:
            raise ValueError(f"network {entry!r} is not an IP network: {error}") from None
    return tuple(networks)


def endpoint_issues(
    url: object,
    allowed: Sequence[AllowedEndpoint],
    networks: Sequence[Network],
    expression: str,
) -> list[Issue]:
    """Why the server may not POST to `url` (none when it may); see the module docstring."""
    try:
        target = _target(url)
        if target.scheme != "https" and not _is_loopback(target.host, target.address):
            raise _Refused("uses http with a host that is not loopback (use https)", _NOT_ALLOWED)
        _check_address(target, networks)
        if not any(_matches(entry, target) for entry in allowed):
            raise _Refused("is not on the server's list of allowed endpoints", _NOT_ALLOWED)
    except _Refused as refusal:
        return [Issue(f"The endpoint {refusal.reason}", refusal.code, expression=(expression,))]
    return []


def address_issue(addresses: Sequence[str], networks: Sequence[Network]) -> str | None:
    """Why a host resolving to `addresses` may not be POSTed to (None when it may)."""
    if not addresses:
        return "the endpoint's host resolved to no address"
    for text in addresses:
        try:
            address = ip_address(text)
        except ValueError:
            return "the endpoint's host resolved to something that is not an IP address"
        if not _public_or_listed(address, networks):
            return (
                "the endpoint's host resolves to a private, loopback or reserved address "
                "that the server does not allow"
            )
    return None


async def resolved_addresses(host: str, port: int) -> list[str]:
    """The distinct addresses `host` resolves to for TCP; OSError when it does not resolve."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _kind, _protocol, _name, socket_address in found:
        text = str(socket_address[0])
        if text not in addresses:
            addresses.append(text)
    return addresses


def target_of(url: str) -> tuple[str, int]:
    """The host (IPv6 without brackets) and port of a URL `endpoint_issues` accepted."""
    try:
        target = _target(url)
    except _Refused as refusal:
        raise ValueError(refusal.reason) from None
    return target.host, target.port


def _target(url: object) -> _Target:
    """`url` read, or _Refused saying why it cannot be."""
    if not isinstance(url, str):
        raise _Refused("is not a string")
    if len(url) > MAX_URL_LENGTH:
        raise _Refused(f"is longer than {MAX_URL_LENGTH} characters")
    scheme, netloc, path = _split(url)
    host_text, port_text = _host_and_port(netloc)
    host, address = _host(host_text)
    return _Target(scheme, host, address, _port(port_text, scheme), _path(path))


def _split(url: str) -> tuple[str, str, str]:
    """Scheme, authority and path of an absolute http(s) URL, no userinfo, no fragment."""
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        raise _Refused("has whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _Refused("is not a valid URL") from None
    if not parts.scheme or not url[len(parts.scheme) :].startswith("://"):
        raise _Refused("is not an absolute URL (scheme://host/path)")
    if parts.scheme not in DEFAULT_PORTS:
        raise _Refused("has a scheme other than https (or http for loopback)", _NOT_ALLOWED)
    if "@" in parts.netloc:
        raise _Refused("has a user name or password", _NOT_ALLOWED)
    if "#" in url:
        raise _Refused("has a fragment", _NOT_ALLOWED)
    return parts.scheme, parts.netloc, parts.path


def _host_and_port(netloc: str) -> tuple[str, str | None]:
    """The host and port texts of an authority (None when it has no port)."""
    if netloc.startswith("["):
        end = netloc.find("]")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise _Refused("has a host that is not a valid bracketed IPv6 address")
        return host, rest[1:] if rest else None
    host, colon, port = netloc.partition(":")
    return host, port if colon else None


def _host(text: str) -> tuple[str, Address | None]:
    """A host as compared (lower-case, no trailing dot), and its address if it is one."""
    if text.startswith("["):
        address6 = _bracketed_address(text)
        return str(address6), address6
    name = text.lower().removesuffix(".")
    if not name:
        raise _Refused("has an empty host")
    labels = name.split(".")
    if len(name) > 253 or not all(_is_label(label) for label in labels):
        raise _Refused("has a host that is not a valid host name")
    if unicodedata.normalize("NFKC", name) != name:
        raise _Refused("has a host with characters that change when normalised")
    if not _is_number(labels[-1]):
        return name, None
    try:
        return name, IPv4Address(name)  # dotted quads only, no leading zeros
    except ValueError:
        raise _Refused("has a host that is a number but not a plain dotted IPv4 address") from None


def _bracketed_address(text: str) -> IPv6Address:
    """The IPv6 address of a `[...]` host (no zone); _Refused when it is not one."""
    try:
        if text.endswith("]") and "%" not in text:
            return IPv6Address(text[1:-1])
    except ValueError:
        pass
    raise _Refused("has a host that is not a valid bracketed IPv6 address")


def _is_label(label: str) -> bool:
    """Whether `label` is one label of a host name (letters, digits, `-`, `_`)."""
    return (
        0 < len(label) <= 63
        and not label.startswith("-")
        and not label.endswith("-")
        and all(char.isalnum() or char in "-_" for char in label)
    )


def _is_number(label: str) -> bool:
    """Whether a resolver could read `label` as a number (decimal, octal or hex)."""
    return label.isdigit() or _HEX_NUMBER.fullmatch(label) is not None


def _port(text: str | None, scheme: str) -> int:
    """The port a URL's port text gives (the scheme's default when it gives none)."""
    if text is None:
        return DEFAULT_PORTS[scheme]
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) <= 65535):
        raise _Refused("has a port that is not a number from 1 to 65535")
    return int(text)


def _path(path: str) -> str:
    """The path as matched (`/` when empty); _Refused when it has `.` or `..` segments."""
    segments = re.split(r"[/\\]", unquote(path))
    if any(segment in (".", "..") for segment in segments):
        raise _Refused("has '.' or '..' path segments")
    return path or "/"


def _is_loopback(host: str, address: Address | None) -> bool:
    """Whether a host is `localhost` or a loopback address (also IPv4-mapped)."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return host == LOOPBACK_NAME or (address is not None and address.is_loopback)


def _check_address(target: _Target, networks: Sequence[Network]) -> None:
    """_Refused when `target`'s host is an address neither public nor in `networks`."""
    address = LOOPBACK_ADDRESS if target.host == LOOPBACK_NAME else target.address
    if address is not None and not _public_or_listed(address, networks):
        raise _Refused(
            "has a host that is a private, loopback or reserved address, "
            "which the server does not allow",
            _NOT_ALLOWED,
        )


def _public_or_listed(address: Address, networks: Sequence[Network]) -> bool:
    """Whether `address`, and any IPv4 address it carries, is public or in `networks`."""
    return all(
        _is_public(meant) or any(_in(meant, network) for network in networks)
        for meant in _meanings(address)
    )


def _meanings(address: Address) -> list[Address]:
    """`address` and the IPv4 address it carries (IPv4-mapped: that address alone)."""
    if isinstance(address, IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    meanings: list[Address] = [address]
    compatible = int(address) >> 32 == 0 and int(address) > 1  # ::a.b.c.d, not :: or ::1
    if address in _NAT64 or compatible:
        meanings.append(IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        meanings.append(address.sixtofour)
    return meanings


def _is_public(address: Address) -> bool:
    """Whether `address` is a public unicast address."""
    return (
        address.is_global
        and not address.is_multicast
        and not any(_in(address, network) for network in _NOT_PUBLIC)
    )


def _in(address: Address, network: Network) -> bool:
    """Whether `address` is inside `network` (never, across IP versions)."""
    return address.version == network.version and address in network


def _matches(entry: AllowedEndpoint, target: _Target) -> bool:
    """Whether allow-list `entry` covers `target`."""
    return (
        entry.scheme == target.scheme
        and _host_matches(entry.host, target.host)
        and entry.port in (None, target.port)
        and _path_under(target.path, entry.path_prefix)
    )


def _host_matches(pattern: str, host: str) -> bool:
    """Whether `host` is `pattern`, or has labels in front of a `*.` pattern's domain."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])  # the domain with its dot: a label must come first
    return host == pattern


def _path_under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or under it, on a segment boundary."""
    if path == prefix:
        return True
    return path.startswith(prefix if prefix.endswith("/") else prefix + "/")


def _allowed_endpoint(entry: str) -> AllowedEndpoint:
    """The allow-list entry `entry` gives, or _Refused saying why it is not one."""
    if "?" in entry or "#" in entry:
        raise _Refused("has a query or a fragment")
    scheme, netloc, path = _split(entry)
    host_text, port_text = _host_and_port(netloc)
    wildcard = host_text.startswith("*.")
    if wildcard:
        host_text = host_text[2:]
    if "*" in host_text or "*" in path:
        raise _Refused("has a wildcard other than a leading '*.' label")
    host, address = _host(host_text)
    if wildcard and address is not None:
        raise _Refused("has a wildcard in front of an IP address")
    if scheme == "http" and (wildcard or not _is_loopback(host, address)):
        raise _Refused("uses http with a host that is not loopback")
    port = None if port_text == "*" else _port(port_text, scheme)
    return AllowedEndpoint(scheme, f"*.{host}" if wildcard else host, port, _path(path))
