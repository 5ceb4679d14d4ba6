"""Settings of the anonymisation service (env prefix ``EUCAIM_``)."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from eucaim_node.deid import Profile, profile_named

from eucaim_node.orthanc import ClinicalOrthancSettings, ResearchOrthancSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.settings import PseudonymKeySettings
from eucaim_node.store import MongoSettings


class AnonymisationSettings(
    ServiceSettings, KafkaSettings, MongoSettings, ClinicalOrthancSettings, ResearchOrthancSettings, PseudonymKeySettings
):
    anonymisation_concurrency: int = Field(default=8, ge=1, le=64, description="Instances in flight at once (fetched, de-identified or stored): keeps the workers busy while others wait on Orthanc.")
    anonymisation_workers: int = Field(default=0, ge=0, le=64, description="De-identification worker processes; 0: one per core this process may use.")
    deid_profile: str = Field(default="eucaim", description="De-identification profile: eucaim, basic, or a profile TOML file (docs/deid.md).")
    deid_options: Annotated[tuple[str, ...], NoDecode] = Field(default=(), description="Extra PS3.15 options on top of the profile, e.g. clean-graphics.")

    @field_validator("deid_options", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value

    def profile(self) -> Profile:
        """The configured profile; an unknown name, file or option is a configuration error (ValueError)."""
        return profile_named(self.deid_profile, self.deid_options)
