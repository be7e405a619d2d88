"""kube's CEL IP and CIDR libraries (`isIP`, `ip()`, `ip.isCanonical`, `isCIDR`, `cidr()`).

Addresses parse as Go's `netip.ParseAddr` does (no leading zeros in IPv4, no zones), and kube
refuses IPv4-mapped IPv6 addresses; prefixes need their `/bits` and keep the address as written
(`cidr('10.0.0.1/8').ip()` is 10.0.0.1, `.masked()` gives 10.0.0.0/8). `string(x)` of an IP or
CIDR is its canonical text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import celpy
from celpy import celtypes

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class IPValue:
    """kube's `net.IP` CEL type."""

    __slots__ = ("address",)

    def __init__(self, address: Address) -> None:
        self.address = address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPValue) and self.address == other.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __str__(self) -> str:
        return str(self.address)


class CIDRValue:
    """kube's `net.CIDR` CEL type: an address and a prefix length, not necessarily masked."""

    __slots__ = ("interface",)

    def __init__(self, interface: Interface) -> None:
        self.interface = interface

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CIDRValue) and self.interface == other.interface

    def __hash__(self) -> int:
        return hash(self.interface)

    def __str__(self) -> str:
        return str(self.interface)


class _Namespace(celtypes.MapType):
    """The value of the `ip` identifier in `ip.isCanonical(...)`."""


MARKER = _Namespace()


def _fail(message: str) -> celpy.CELEvalError:
    return celpy.CELEvalError(message)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("no such overload")
    return str(value)


def parse_ip(text: str) -> Address:
    """The address, or ValueError with kube's reason."""
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f'ParseAddr("{text}"): unable to parse IP') from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return address


def parse_cidr(text: str) -> Interface:
    """The prefix (address as written), or ValueError with kube's reason."""
    address, slash, bits = text.partition("/")
    if not slash or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise ValueError(f'netip.ParsePrefix("{text}"): no \'/\'' if not slash
                         else f'netip.ParsePrefix("{text}"): bad bits after slash: "{bits}"')
    parsed = parse_ip(address)
    if int(bits) > parsed.max_prefixlen:
        raise ValueError(f'netip.ParsePrefix("{text}"): prefix length out of range')
    return ipaddress.ip_interface(f"{parsed}/{bits}")


def _ip(value: Any) -> IPValue:
    text = _text(value)
    try:
        return IPValue(parse_ip(text))
    except ValueError as exc:
        raise _fail(f'IP Address "{text}" parse error during conversion from string: {exc}') from None


def _is_ip(value: Any) -> Any:
    try:
        parse_ip(_text(value))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _is_canonical(target: Any, value: Any) -> Any:
    if not isinstance(target, _Namespace):
        raise _fail("no such overload")
    text = _text(value)
    try:
        return celtypes.BoolType(str(parse_ip(text)) == text)
    except ValueError as exc:
        raise _fail(f'IP Address "{text}" parse error during conversion from string: {exc}') from None


def _cidr(value: Any) -> CIDRValue:
    text = _text(value)
    try:
        return CIDRValue(parse_cidr(text))
    except ValueError as exc:
        raise _fail(f'network address "{text}" parse error during conversion from string: {exc}') from None


def _is_cidr(value: Any) -> Any:
    try:
        parse_cidr(_text(value))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _address(target: Any) -> Address:
    if not isinstance(target, IPValue):
        raise _fail("no such overload")
    return target.address


def _prefix(target: Any) -> Interface:
    if not isinstance(target, CIDRValue):
        raise _fail("no such overload")
    return target.interface


def _contains_ip(target: Any, other: Any) -> Any:
    network = _prefix(target).network
    address = _ip(other).address if isinstance(other, str) else _address(other)
    return celtypes.BoolType(address.version == network.version and address in network)


def _contains_cidr(target: Any, other: Any) -> Any:
    network = _prefix(target).network
    inner = _cidr(other).interface if isinstance(other, str) else _prefix(other)
    return celtypes.BoolType(inner.version == network.version and inner.network.prefixlen >= network.prefixlen
                             and inner.ip in network)


def _address_test(test: Callable[[Address], bool]) -> Callable[[Any], Any]:
    return lambda target: celtypes.BoolType(test(_address(target)))


def _global_unicast(address: Address) -> bool:
    """Go's IsGlobalUnicast: not unspecified, loopback, multicast, link-local or broadcast."""
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local:
        return False
    return not (address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"))


def _link_local_multicast(address: Address) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return address.is_multicast and (int(address) >> 112) & 0xF == 2


def _ip_of(target: Any) -> Any:
    """`ip()` of a CIDR (its address as written) or `ip(string)`."""
    if isinstance(target, CIDRValue):
        return IPValue(target.interface.ip)
    return _ip(target)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ip": _ip_of, "isIP": _is_ip, "isCanonical": _is_canonical, "cidr": _cidr, "isCIDR": _is_cidr,
    "family": lambda target: celtypes.IntType(_address(target).version),
    "isUnspecified": _address_test(lambda a: a.is_unspecified),
    "isLoopback": _address_test(lambda a: a.is_loopback),
    "isLinkLocalMulticast": _address_test(_link_local_multicast),
    "isLinkLocalUnicast": _address_test(lambda a: a.is_link_local and not a.is_multicast),
    "isGlobalUnicast": _address_test(_global_unicast),
    "containsIP": _contains_ip, "containsCIDR": _contains_cidr,
    "masked": lambda target: CIDRValue(ipaddress.ip_interface(str(_prefix(target).network))),
    "prefixLength": lambda target: celtypes.IntType(_prefix(target).network.prefixlen),
}
