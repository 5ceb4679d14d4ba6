"""Where the clinical and the research Orthanc are, and how to authenticate (password from a file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class OrthancEndpoint:
    url: str
    username: str | None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"OrthancEndpoint(url={self.url!r}, username={self.username!r})"


def _read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read password file {path}: {exc.strerror}") from None


class ClinicalOrthancSettings(BaseSettings):
    """The clinical Orthanc: receives identifiable images; only reception and anonymisation reach it."""

    model_config = SettingsConfigDict(env_prefix="EUCAIM_", extra="ignore", frozen=True)

    clinical_orthanc_url: str = Field(default="http://127.0.0.1:8042", pattern=r"^https?://")
    clinical_orthanc_username: str | None = None
    clinical_orthanc_password_file: Path | None = None

    @field_validator("clinical_orthanc_password_file")
    @classmethod
    def _readable(cls, v: Path | None) -> Path | None:
        _read_secret(v)
        return v

    def clinical_orthanc(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.clinical_orthanc_url, self.clinical_orthanc_username,
                               _read_secret(self.clinical_orthanc_password_file))


class ResearchOrthancSettings(BaseSettings):
    """The research Orthanc: holds de-identified images only; only anonymisation writes to it."""

    model_config = SettingsConfigDict(env_prefix="EUCAIM_", extra="ignore", frozen=True)

    research_orthanc_url: str = Field(default="http://127.0.0.1:8043", pattern=r"^https?://")
    research_orthanc_username: str | None = None
    research_orthanc_password_file: Path | None = None

    @field_validator("research_orthanc_password_file")
    @classmethod
    def _readable(cls, v: Path | None) -> Path | None:
        _read_secret(v)
        return v

    def research_orthanc(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.research_orthanc_url, self.research_orthanc_username,
                               _read_secret(self.research_orthanc_password_file))
