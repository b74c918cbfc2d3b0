"""Meeverhuizen protocol v1: message models, canonical JSON and signatures.

A pure library: no web framework, database or environment access. ``agent`` and ``registry``
build on it; it never imports them.
"""

from protocol import errors
from protocol.clock import Clock, FrozenClock, SystemClock

__all__ = [
    "Clock",
    "FrozenClock",
    "SystemClock",
    "errors",
]
