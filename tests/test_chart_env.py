"""Every component the Helm chart renders is given every setting its service requires.

Nothing here is a hand list: the components are the chart's (values ``components``), the service is the module
its container command runs, the settings class is the one that module's entry point (``__main__``) loads, and
"required" is what that class says: fields without a default, and its validators' conditions (SASL needs a
password file, ...), checked by validating the rendered environment with stand-in secret files. A chart that
renders a service without a setting it needs fails here instead of in a crash-looping pod (make deploy-check
runs them for real).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from eucaim_node.runtime.settings import ENV_PREFIX, describe_errors
from eucaim_node.stack.kubeplay import chart_components, chart_dir, render_chart

#: Calls in an entry point that name its settings class, and the position of the class among their arguments.
SETTINGS_CALLS = {"run_service": 1, "load_settings": 0, "exit_on_arguments": 1}


def entry_point_settings(module: str) -> type[BaseSettings]:
    """The settings class ``python -m eucaim_node.<module>`` loads, read from its ``__main__``."""
    spec = importlib.util.find_spec(f"eucaim_node.{module}.__main__")
    assert spec is not None and spec.origin, f"eucaim_node.{module} has no __main__"
    names = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SETTINGS_CALLS:
            argument = node.args[SETTINGS_CALLS[node.func.id]]
            assert isinstance(argument, ast.Name), ast.dump(argument)
            names.add(argument.id)
    entry = importlib.import_module(f"eucaim_node.{module}.__main__")  # its body runs only as __main__
    classes = {getattr(entry, name) for name in names}
    assert len(classes) == 1, f"eucaim_node.{module}.__main__ loads {names}: expected one settings class"
    return classes.pop()


def _ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())


def missing_settings(deployment: dict[str, Any], stand_ins: Path) -> list[str]:
    """What the service of ``deployment`` would refuse at start: one line per missing or invalid setting."""
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["python", "-m"] and command[2].startswith("eucaim_node."), command
    settings_cls = entry_point_settings(command[2].removeprefix("eucaim_node."))
    env = {e["name"]: e.get("value", "stand-in from a Secret") for e in container["env"] if e["name"].startswith(ENV_PREFIX)}
    required = {ENV_PREFIX + f.upper() for f, info in settings_cls.model_fields.items() if info.is_required()}
    problems = [f"{name}: required by {settings_cls.__name__}, not rendered" for name in sorted(required - set(env))]
    values = {}
    for name, value in env.items():
        field = name.removeprefix(ENV_PREFIX).lower()
        if field not in settings_cls.model_fields:
            continue  # given but not read (the witness's health port): harmless, asserted in tests/test_helm.py
        if name.endswith("_FILE"):  # the mounted secret, as a readable stand-in of a plausible format
            path = stand_ins / Path(value).name
            path.write_bytes(_ed25519_pem() if name.endswith("KEY_FILE") and "HMAC" not in name else b"s3cret-" * 6)
            value = str(path)
        values[field] = value
    if not problems:
        try:
            settings_cls.model_validate(values)
        except ValidationError as exc:
            problems += [line.strip() for line in describe_errors(exc)]
    return problems


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict[str, Any]]:
    return render_chart({}, tmp_path_factory.mktemp("chart"))


def deployments_of(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["app.kubernetes.io/component"]: o for o in objects if o["kind"] == "Deployment"}


def test_the_chart_renders_a_deployment_for_every_component(rendered):
    assert set(deployments_of(rendered)) == set(chart_components())


@pytest.mark.parametrize("component", chart_components())
def test_each_component_gets_every_setting_its_service_requires(rendered, component, tmp_path):
    assert missing_settings(deployments_of(rendered)[component], tmp_path) == []


def _render_mutated(tmp_path: Path, template_name: str, old: str, new: str) -> dict[str, dict[str, Any]]:
    chart = tmp_path / "chart"
    shutil.copytree(chart_dir(), chart)
    template = chart / "templates" / template_name
    text = template.read_text()
    assert old in text
    template.write_text(text.replace(old, new))
    return deployments_of(render_chart({}, tmp_path, chart))


def test_a_chart_that_drops_a_required_setting_is_caught(tmp_path):
    """The check fails on wrong code: without EUCAIM_HEALTH_PORT (a field without default) every service is
    reported; the witness, which does not read it, is not."""
    deployments = _render_mutated(tmp_path, "components.yaml", '- {name: EUCAIM_HEALTH_PORT, value: "8080"}', "")
    reported = {c for c, d in deployments.items() if any("EUCAIM_HEALTH_PORT" in line for line in missing_settings(d, tmp_path))}
    assert reported == {c for c, m in chart_components().items()
                        if "health_port" in entry_point_settings(m).model_fields}
    assert "witness" not in reported and reported


def test_a_chart_that_drops_a_conditionally_required_setting_is_caught(tmp_path):
    """A validator's condition, not a field without default: SASL_SSL needs the password file."""
    deployments = _render_mutated(tmp_path, "_helpers.tpl",
                                  '{{- $files = append $files (dict "env" "EUCAIM_KAFKA_SASL_PASSWORD_FILE"',
                                  '{{- $files = append $files (dict "env" "EUCAIM_KAFKA_SASL_PASSWORD_NOT_FILE"')
    problems = missing_settings(deployments["metadata"], tmp_path)
    assert any("EUCAIM_KAFKA_SASL_PASSWORD_FILE" in line for line in problems), problems
