"""Meeverhuizen protocol v1: message models, canonical JSON and signatures.

A pure library: no web framework, database or environment access. ``agent`` and ``registry``
build on it; it never imports them.
"""

from protocol import errors, identifiers, jwk, jws, messages, settlement, signing
from protocol._jcs import canonicalize
from protocol.clock import Clock, FrozenClock, SystemClock
from protocol.messages import Message, message_to_json, parse_message

__all__ = [
    "Clock",
    "FrozenClock",
    "Message",
    "SystemClock",
    "canonicalize",
    "errors",
    "identifiers",
    "jwk",
    "jws",
    "message_to_json",
    "messages",
    "parse_message",
    "settlement",
    "signing",
]
