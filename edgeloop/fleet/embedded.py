"""The embedded broker: amqtt in its own process, with Mosquitto's rules for users and topics.

Started by EmbeddedBroker (broker.py) as `python -m edgeloop.fleet.embedded CONFIG.json`; the
config holds host, port, users (name -> password) and the ACL in Mosquitto's syntax, so the
same generated ACL governs both brokers: `user NAME`, `topic read|write|readwrite FILTER`,
`pattern ... FILTER` with %u for the user name.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import sys
from dataclasses import dataclass, field

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin


def parse_acl(text: str) -> tuple[dict[str, list[tuple[str, str]]], list[tuple[str, str]]]:
    """Mosquitto ACL text -> ({user: [(access, filter)]}, [(access, pattern filter)])."""
    users: dict[str, list[tuple[str, str]]] = {}
    patterns: list[tuple[str, str]] = []
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "user":
            current = rest.strip()
            users.setdefault(current, [])
            continue
        access, _, flt = rest.strip().partition(" ")
        if not flt:
            access, flt = "readwrite", access
        if word == "topic" and current is not None:
            users[current].append((access, flt.strip()))
        elif word == "pattern":
            patterns.append((access, flt.strip()))
    return users, patterns


def topic_matches(topic: str, flt: str) -> bool:
    """MQTT filter matching (+ one level, # the rest); a filter given to subscribe must be covered
    by the ACL filter level by level, so `el/a/cmd` is allowed by `el/a/cmd` but `el/#` is not."""
    t, f = topic.split("/"), flt.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
        if part == "+" and t[i] == "#":
            return False
    return len(t) == len(f)


def allowed(user: str | None, topic: str, need: str, acl: tuple) -> bool:
    users, patterns = acl
    if user is None:
        return False
    rules = list(users.get(user, [])) + [(a, f.replace("%u", user)) for a, f in patterns]
    return any(need in access and topic_matches(topic, flt) for access, flt in rules)


class PasswordAuth(BaseAuthPlugin):
    """Only the users of the generated password list, passwords compared in constant time."""

    @dataclass
    class Config:
        users: dict[str, str] = field(default_factory=dict)

    async def authenticate(self, *, session) -> bool | None:  # type: ignore[no-untyped-def]
        want = self.config.users.get(session.username or "")
        got = session.password or ""
        return want is not None and hmac.compare_digest(want.encode(), got.encode())


class AclTopics(BaseTopicPlugin):
    """Mosquitto-syntax ACL for publish, subscribe and delivery."""

    @dataclass
    class Config:
        acl: str = ""

    def __init__(self, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(context)
        self.rules = parse_acl(self.config.acl)

    async def topic_filtering(self, *, session=None, topic=None, action=None) -> bool:  # type: ignore[no-untyped-def]
        if not topic:
            return False
        user = session.username if session else None
        need = "write" if action == Action.PUBLISH else "read"
        return allowed(user, topic, need, self.rules)


def broker_config(cfg: dict) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{cfg['host']}:{cfg['port']}",
                                  "max_connections": 0}},
        "plugins": {
            "edgeloop.fleet.embedded.PasswordAuth": {"users": cfg["users"]},
            "edgeloop.fleet.embedded.AclTopics": {"acl": cfg["acl"]},
        },
    }


async def _serve(cfg: dict) -> None:
    broker = Broker(broker_config(cfg))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    with open(args[0]) as f:
        cfg = json.load(f)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(cfg))


if __name__ == "__main__":
    main()
