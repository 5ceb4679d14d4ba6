"""The local stack manager: real Kafka, FerretDB, two Orthancs and the five node services on loopback.

>>> stack = Stack(StackSettings())          # or Stack.test_profile()
>>> stack.up(services=False)                # installs on first use, idempotent
>>> stack.status()["kafka"].healthy
"""

from .manager import INFRASTRUCTURE, SERVICES, Component, ComponentStatus, Stack
from .process import ComponentFailed, ManagedProcess
from .settings import PORT_FIELDS, SERVICE_MODULES, TEST_PORT_OFFSET, StackSettings

__all__ = [
    "INFRASTRUCTURE",
    "PORT_FIELDS",
    "SERVICES",
    "SERVICE_MODULES",
    "TEST_PORT_OFFSET",
    "Component",
    "ComponentFailed",
    "ComponentStatus",
    "ManagedProcess",
    "Stack",
    "StackSettings",
]
