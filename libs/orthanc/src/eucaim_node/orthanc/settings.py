"""Where the clinical and the research Orthanc are, and how to authenticate (password from a file)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from eucaim_node.settings import NodeSettings, ReadableFile, read_secret


@dataclass(frozen=True)
class OrthancEndpoint:
    url: str
    username: str | None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"OrthancEndpoint(url={self.url!r}, username={self.username!r})"


class ClinicalOrthancSettings(NodeSettings):
    """The clinical Orthanc: receives identifiable images; only reception and anonymisation reach it."""

    clinical_orthanc_url: str = Field(default="http://127.0.0.1:8042", pattern=r"^https?://")
    clinical_orthanc_username: str | None = None
    clinical_orthanc_password_file: ReadableFile | None = None

    def clinical_orthanc(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.clinical_orthanc_url, self.clinical_orthanc_username,
                               read_secret(self.clinical_orthanc_password_file))


class ResearchOrthancSettings(NodeSettings):
    """The research Orthanc: holds de-identified images only; only anonymisation writes to it."""

    research_orthanc_url: str = Field(default="http://127.0.0.1:8043", pattern=r"^https?://")
    research_orthanc_username: str | None = None
    research_orthanc_password_file: ReadableFile | None = None

    def research_orthanc(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.research_orthanc_url, self.research_orthanc_username,
                               read_secret(self.research_orthanc_password_file))
