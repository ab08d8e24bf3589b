"""What every servicer needs: the store, settings, payload limits and wake-ups."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker import validate
from broker.config import Settings
from broker.dispatch import Dispatcher
from broker.store import Store
from broker.wakeups import Wakeups


@dataclass
class ServiceContext:
    store: Store
    settings: Settings
    wakeups: Wakeups
    dispatcher: Dispatcher
    payload: validate.Payload = field(init=False)

    def __post_init__(self) -> None:
        self.payload = validate.Payload(self.settings.max_payload_bytes)

    def namespace(self, value: str) -> str:
        return validate.namespace(value, self.settings.namespace)
