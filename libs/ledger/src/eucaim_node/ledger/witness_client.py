"""HTTP client of a C2SP tlog-witness (c2sp.org/tlog-witness), as the audit service and the CLI use it.

``add_checkpoint`` sends ``old <size>``, the consistency proof lines, an empty line and the signed
checkpoint; a 409 answer carries the witness's size (``text/x.tlog.size``) and is raised as
:class:`WitnessConflict`; any other refusal as :class:`WitnessRefused`; a witness that cannot be
reached as :class:`WitnessUnavailable`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import httpx

from .checkpoint import HeadError
from .cosignature import open_cosignature, parse_cosigner_verifier_key

#: A checkpoint with a few signatures: far below this.
MAX_RESPONSE_BYTES = 64 * 1024


class WitnessError(RuntimeError):
    """Base of the witness client's errors."""


class WitnessUnavailable(WitnessError):
    """The witness could not be reached or answered with a server error."""


class WitnessRefused(WitnessError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the witness refused the checkpoint ({status}): {message}")
        self.status = status


class WitnessConflict(WitnessRefused):
    """409: the witness's latest size for this log is ``size`` (None: a fork at the same size, no size given)."""

    def __init__(self, size: int | None, message: str) -> None:
        super().__init__(409, message)
        self.size = size


def proof_lines(proof: Sequence[bytes]) -> str:
    return "".join(base64.b64encode(p).decode() + "\n" for p in proof)


class Witness:
    """A witness's identity: its name and public key, from its verifier key (a trust anchor read from a file)."""

    def __init__(self, vkey: str) -> None:
        self.vkey = vkey.strip()
        self.name, self.public_key = parse_cosigner_verifier_key(self.vkey)

    @classmethod
    def from_file(cls, path: Path) -> Witness:
        return cls(Path(path).read_text())

    def check(self, cosigned_note: str) -> int:
        """The timestamp of this witness's valid cosignature on the note; HeadError if there is none."""
        return open_cosignature(cosigned_note, self.name, self.public_key).timestamp


class WitnessClient:
    def __init__(self, url: str, *, token: str | None = None, ca_file: Path | None = None, timeout: float = 10.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       verify=str(ca_file) if ca_file else True, follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise WitnessUnavailable(f"witness {self.url} unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise WitnessUnavailable(f"witness {self.url} answered {response.status_code}")
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise WitnessUnavailable(f"witness {self.url} answered more than {MAX_RESPONSE_BYTES} bytes")
        return response

    async def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: str) -> str:
        """The witness's cosignature line(s) on ``note``."""
        body = f"old {old_size}\n{proof_lines(proof)}\n{note}"
        response = await self._send("POST", "/add-checkpoint", content=body.encode(),
                                    headers={"content-type": "text/plain; charset=utf-8"})
        text = response.text
        if response.status_code == 409:
            size = text.strip()
            known = int(size) if response.headers.get("content-type", "").startswith("text/x.tlog.size") \
                and size.isdigit() else None
            raise WitnessConflict(known, text.strip()[:300])
        if response.status_code != 200:
            raise WitnessRefused(response.status_code, text.strip()[:300])
        return text

    async def latest(self, origin: str) -> str | None:
        """The latest checkpoint the witness cosigned for ``origin`` (with its cosignature), None if none."""
        response = await self._send("GET", "/checkpoint", params={"origin": origin})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise WitnessRefused(response.status_code, response.text.strip()[:300])
        return response.text


def cosigned(note: str, cosignature_lines: str, witness: Witness | None) -> str:
    """``note`` with the witness's lines appended, after checking them when the witness's key is known."""
    combined = note + "".join(line + "\n" for line in cosignature_lines.splitlines() if line.strip())
    if witness is not None:
        try:
            witness.check(combined)
        except HeadError as exc:
            raise WitnessRefused(200, f"the witness's answer holds no valid cosignature: {exc}") from None
    return combined
