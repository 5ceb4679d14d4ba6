"""The local stack gives each service, and the operator's CLI, exactly the settings its settings class needs.

The stack (libs/stack) renders every environment as a merge of per-concern parts without importing the
services; here the expectation is derived from the settings classes themselves: a part goes to a service if
and only if the service's settings class declares every variable of that part. So a service handed a setting
it does not declare (the clinical Orthanc's password for metadata), or missing one it requires, fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from eucaim_node.anonymisation.config import AnonymisationSettings
from eucaim_node.audit.config import AuditSettings
from eucaim_node.catalogue_sync.config import CatalogueSyncSettings
from eucaim_node.cli.dataset import DatasetCliSettings
from eucaim_node.cli.job import JobReviewCliSettings
from eucaim_node.cli.search import FederationCliSettings
from eucaim_node.datasets.settings import DatasetRootSettings
from eucaim_node.cli.withdraw import WithdrawalCliSettings
from eucaim_node.cli.audit import AuditCliSettings
from eucaim_node.materialiser.config import MaterialiserSettings
from eucaim_node.jobs.config import JobsSettings
from eucaim_node.metadata.config import MetadataSettings
from eucaim_node.reception.config import ReceptionSettings
from eucaim_node.witness.config import WitnessSettings
from eucaim_node.runtime.settings import ENV_PREFIX
from eucaim_node.stack import SERVICE_MODULES, StackSettings, configs
from eucaim_node.stack.secrets_files import ensure_secrets

#: The settings classes that read each environment; the CLI's node.env serves all of its commands.
READERS: dict[str, tuple[type[BaseSettings], ...]] = {
    "reception": (ReceptionSettings,),
    "anonymisation": (AnonymisationSettings,),
    "metadata": (MetadataSettings,),
    "catalogue_sync": (CatalogueSyncSettings,),
    "audit": (AuditSettings,),
    "materialiser": (MaterialiserSettings,),
    "jobs": (JobsSettings,),
    configs.OPERATOR_CLI: (AuditCliSettings, FederationCliSettings, WithdrawalCliSettings, DatasetCliSettings,
                           DatasetRootSettings, JobReviewCliSettings),
}


#: Declared but deliberately withheld: (subject, part) → why.
WITHHELD: dict[tuple[str, str], str] = {
    (configs.OPERATOR_CLI, "search_env"): "eucaim-node search reads the database; the token is for remote clients",
}


def known(readers: tuple[type[BaseSettings], ...]) -> set[str]:
    return {ENV_PREFIX + field.upper() for cls in readers for field in cls.model_fields}


def required(readers: tuple[type[BaseSettings], ...]) -> set[str]:
    return {ENV_PREFIX + f.upper() for cls in readers for f, info in cls.model_fields.items() if info.is_required()}


def eucaim(env: dict[str, str]) -> set[str]:
    return {key for key in env if key.startswith(ENV_PREFIX)}


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    s = StackSettings.test_profile(state_dir=tmp_path)
    ensure_secrets(s)  # the secret files the environments name exist, as after `stack up`
    return s


def test_every_subject_has_readers() -> None:
    assert set(READERS) == set(configs.ENV_SUBJECTS) == {*SERVICE_MODULES, configs.OPERATOR_CLI}


@pytest.mark.parametrize("subject", READERS)
def test_environment_is_exactly_what_the_settings_class_declares_and_requires(settings, subject) -> None:
    env = configs.render_service_env(settings, subject)
    readers = READERS[subject]
    assert eucaim(env) <= known(readers), f"{subject} is given settings it does not declare: {eucaim(env) - known(readers)}"
    assert required(readers) <= eucaim(env), f"{subject} misses required settings: {required(readers) - eucaim(env)}"
    values = {key.removeprefix(ENV_PREFIX).lower(): value for key, value in env.items() if key.startswith(ENV_PREFIX)}
    for cls in readers:  # the values validate (secret files exist and are readable)
        cls.model_validate({k: v for k, v in values.items() if k in cls.model_fields})


@pytest.mark.parametrize("subject", READERS)
def test_each_part_goes_to_exactly_the_subjects_whose_settings_declare_it(settings, subject) -> None:
    """Derived from the settings classes: a concern (Kafka, an Orthanc, the HMAC key, the ledger...) is handed
    to a subject if and only if its settings class declares all of that concern's variables."""
    declared = known(READERS[subject])
    for part in configs.SERVICE_ENV_PARTS:
        variables = set().union(*(eucaim(part(settings, other)) for other in configs.ENV_SUBJECTS))
        given = eucaim(part(settings, subject))
        declares = bool(variables) and variables <= declared
        expected = variables if declares and (subject, part.__name__) not in WITHHELD else set()
        assert given == expected, f"{part.__name__} for {subject}: given {sorted(given)}, expected {sorted(expected)}"


def test_no_service_but_reception_and_anonymisation_gets_a_clinical_credential(settings) -> None:
    clinical = str(configs.orthanc_password_file(settings, "clinical"))
    for subject in configs.ENV_SUBJECTS:
        env = configs.render_service_env(settings, subject)
        holds = clinical in env.values() or any(k.startswith("EUCAIM_CLINICAL_ORTHANC") for k in env)
        assert holds == (subject in ("reception", "anonymisation")), subject
    assert configs.orthanc_password_file(settings, "clinical") != configs.orthanc_password_file(settings, "research")


def test_the_witness_is_given_exactly_its_own_settings(settings) -> None:
    """The witness runs apart from the node (another operator's in production): no Kafka, database, Orthanc or
    node secret reaches it, only what WitnessSettings declares, and all that it requires."""
    env = eucaim(configs.render_witness_env(settings))
    assert env <= known((WitnessSettings,)), env - known((WitnessSettings,))
    assert required((WitnessSettings,)) <= env, required((WitnessSettings,)) - env
    assert all(key.startswith(ENV_PREFIX + "WITNESS_") for key in env)
