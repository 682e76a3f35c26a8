"""Stable ids from names, shared by the scenario's bills and its telemetry, so the same
scenario gives the same line item and instance ids, and a GPU host's OTLP `host.id` is the
instance id its CUR line items name."""

from __future__ import annotations

import hashlib


def short_hash(*parts: object, n: int = 16) -> str:
    """A stable id from its parts (line item ids, instance ids): same scenario, same ids."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def instance_id(host: str) -> str:
    """The EC2 instance id behind an AWS host's name (`ip-10-42-7-21.ec2.internal`)."""
    return "i-0" + short_hash("instance", host, n=16)
