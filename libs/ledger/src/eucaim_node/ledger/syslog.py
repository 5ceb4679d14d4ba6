"""DICOM audit messages to an ATNA audit record repository: RFC 5424 messages over TLS (RFC 5425).

Framing is RFC 5425's octet counting (``MSG-LEN SP SYSLOG-MSG``); the message follows IHE ITI-20:
facility 10 (security/authorization), severity 5 (notice), MSGID ``IHE+RFC-3881``, the XML as the
UTF-8 MSG (with BOM, RFC 5424 6.4). The Python syslog handlers on PyPI are synchronous logging
handlers (and the RFC 5424 ones unmaintained since 2019), so the few lines of framing live here,
on asyncio's TLS streams.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime
from pathlib import Path

from .canonical import format_time

FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE = 5
MSGID_DICOM = "IHE+RFC-3881"
BOM = "\ufeff"


def _field(value: str, limit: int) -> str:
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def format_message(xml: str, *, at: datetime, hostname: str, app_name: str = "eucaim-node", procid: str = "-",
                   msgid: str = MSGID_DICOM) -> bytes:
    """One RFC 5424 SYSLOG-MSG (no framing)."""
    pri = FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE
    header = f"<{pri}>1 {format_time(at)} {_field(hostname, 255)} {_field(app_name, 48)} {_field(procid, 128)} {_field(msgid, 32)} -"
    return f"{header} {BOM}{xml}".encode()


def frame(message: bytes) -> bytes:
    """RFC 5425 octet counting."""
    return str(len(message)).encode() + b" " + message


def client_context(ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context verifying the server against ``ca_file`` (system CAs when None); a client
    certificate when given (ATNA repositories usually require mutual authentication)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return context


class SyslogTlsSender:
    """One TLS connection to the repository, reopened after a failure."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, *, server_name: str | None = None,
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.context = host, port, context
        self.server_name = server_name or host
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            _, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.context, server_hostname=self.server_name),
                self.timeout)
        return self._writer

    async def send(self, messages: list[bytes]) -> None:
        """Send framed messages; on any error the connection is dropped and the error raised (resend them)."""
        try:
            writer = await self._connect()
            writer.write(b"".join(frame(m) for m in messages))
            await asyncio.wait_for(writer.drain(), self.timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), self.timeout)
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                pass
