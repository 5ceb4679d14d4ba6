"""First-use installation of what the stack runs: Kafka jars (Maven), FerretDB (Go), Orthanc and tools (Debian).

Everything downloaded or built lands in the cache dir (shared by all profiles); nothing is committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .process import ComponentFailed
from .settings import StackSettings, find_repo_root

log = logging.getLogger(__name__)

ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
DEBIAN_PACKAGES: tuple[str, ...] = ("orthanc", "orthanc-dicomweb", "dcmtk", "dicom3tools", "tesseract-ocr")
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"

#: How long each install step took in this process (component -> seconds); only steps that did work.
INSTALL_TIMINGS: dict[str, float] = {}

_apt_updated = False


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes (e.g. `make up` and pytest) never install at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(component: str, command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 1800) -> str:
    try:
        done = subprocess.run(
            command, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ComponentFailed(component, f"{command[0]!r} is not installed (needed to install {component})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ComponentFailed(component, f"{' '.join(command)} timed out after {timeout:g} s") from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-20:])
        raise ComponentFailed(component, f"{' '.join(command)} failed with exit code {done.returncode}",
                              log_tail=output)
    return done.stdout


# -- Kafka ------------------------------------------------------------------------------------------------------

def kafka_pom(settings: StackSettings) -> Path:
    root = find_repo_root()
    if root is None or not (root / "deploy/local/kafka/pom.xml").is_file():
        raise ComponentFailed("kafka", "cannot find deploy/local/kafka/pom.xml (run from the eucaim-node repository)")
    return root / "deploy/local/kafka/pom.xml"


def kafka_libs_dir(settings: StackSettings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"


def ensure_kafka(settings: StackSettings) -> Path:
    """The directory holding the Kafka jars, resolved from Maven Central with the pom on first use."""
    if shutil.which("java") is None:
        raise ComponentFailed("kafka", "Java 17+ ('java') is required; apt-get install openjdk-17-jre-headless")
    libs = kafka_libs_dir(settings)
    marker = libs.parent / ".complete"
    if marker.is_file():
        return libs
    with file_lock(settings.cache_dir / ".install-kafka.lock"):
        if marker.is_file():
            return libs
        if shutil.which("mvn") is None:
            raise ComponentFailed("kafka", "Maven ('mvn') is required to fetch the Kafka jars; apt-get install maven")
        started = time.monotonic()
        libs.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
        try:
            _run("kafka", [
                "mvn", "-q", "-B", "-f", str(kafka_pom(settings)), "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}", "-DincludeScope=runtime", f"-Dkafka.version={settings.kafka_version}",
            ])
            if not (staging / f"kafka_2.13-{settings.kafka_version}.jar").is_file():
                raise ComponentFailed("kafka", f"Maven did not produce kafka_2.13-{settings.kafka_version}.jar")
            shutil.rmtree(libs, ignore_errors=True)
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker.write_text(json.dumps({"version": settings.kafka_version, "installed_at": time.time()}))
        INSTALL_TIMINGS["kafka"] = time.monotonic() - started
        log.info("installed Kafka %s jars in %.1f s", settings.kafka_version, INSTALL_TIMINGS["kafka"])
    return libs


def kafka_provisioner(settings: StackSettings) -> tuple[Path | None, str]:
    """(extra class path, main) that runs deploy/local/kafka/Provision.java with the Kafka jars.

    Compiled once per source version into the cache when ``javac`` exists (a JDK); otherwise Java's
    single-file launcher (JEP 330) compiles it in memory at every run, which is slower on a busy machine.
    """
    source = kafka_pom(settings).parent / "Provision.java"
    if shutil.which("javac") is None:
        return None, str(source)
    digest = hashlib.sha256(source.read_bytes() + settings.kafka_version.encode()).hexdigest()[:16]
    classes = settings.cache_dir / "kafka-provision" / digest
    if not (classes / "Provision.class").is_file():
        with file_lock(settings.cache_dir / ".install-kafka-provision.lock"):
            if not (classes / "Provision.class").is_file():
                classes.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix="classes-", dir=classes.parent))
                try:
                    _run("kafka", ["javac", "-cp", f"{kafka_libs_dir(settings)}/*", "-d", str(staging), str(source)])
                    shutil.rmtree(classes, ignore_errors=True)
                    staging.rename(classes)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
    return classes, "Provision"


# -- FerretDB ---------------------------------------------------------------------------------------------------

def ferretdb_binary(settings: StackSettings) -> Path:
    return settings.cache_dir / "bin" / "ferretdb"


def _ferretdb_version(binary: Path) -> str | None:
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip()
    return None


def ensure_ferretdb(settings: StackSettings) -> Path:
    """The FerretDB binary, built from its Go module on first use (see docs/decisions/0002)."""
    binary = ferretdb_binary(settings)
    if _ferretdb_version(binary) == settings.ferretdb_version:
        return binary
    with file_lock(settings.cache_dir / ".install-ferretdb.lock"):
        if _ferretdb_version(binary) == settings.ferretdb_version:
            return binary
        if shutil.which("go") is None:
            raise ComponentFailed("ferretdb", "Go ('go') is required to build FerretDB")
        started = time.monotonic()
        build_env = {"GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        # `go install …/cmd/ferretdb@v1.24.2` alone builds a binary that panics at start: the module zip lacks
        # build/version/version.txt (generated from git). Build from a copy of the module with that file written.
        module = json.loads(_run("ferretdb", ["go", "mod", "download", "-json",
                                              f"{FERRETDB_MODULE}@{settings.ferretdb_version}"], env=build_env))
        source_root = settings.cache_dir / "build"
        source_root.mkdir(parents=True, exist_ok=True)
        source = Path(tempfile.mkdtemp(prefix=f"ferretdb-{settings.ferretdb_version}-", dir=source_root))
        try:
            shutil.copytree(module["Dir"], source, dirs_exist_ok=True)
            for directory, _subdirs, _files in os.walk(source):
                os.chmod(directory, 0o755)
            version_dir = source / "build" / "version"
            os.chmod(version_dir, 0o755)
            (version_dir / "version.txt").write_text(settings.ferretdb_version + "\n")
            (version_dir / "package.txt").write_text("eucaim-node-local\n")
            binary.parent.mkdir(parents=True, exist_ok=True)
            staging = binary.with_name(f".ferretdb-{os.getpid()}")
            _run("ferretdb", ["go", "build", "-trimpath", "-o", str(staging), "./cmd/ferretdb"],
                 env=build_env, cwd=source)
            staging.replace(binary)
        finally:
            shutil.rmtree(source, ignore_errors=True)
        version = _ferretdb_version(binary)
        if version != settings.ferretdb_version:
            raise ComponentFailed("ferretdb", f"built binary reports version {version!r}, "
                                              f"expected {settings.ferretdb_version!r}")
        INSTALL_TIMINGS["ferretdb"] = time.monotonic() - started
        log.info("built FerretDB %s in %.1f s", settings.ferretdb_version, INSTALL_TIMINGS["ferretdb"])
    return binary


# -- Debian packages: Orthanc, DICOMweb plugin, dcmtk, dicom3tools, tesseract (OCR) -----------------------------------------------

def _debian_missing() -> list[str]:
    missing = []
    if not ORTHANC_BINARY.is_file():
        missing.append(str(ORTHANC_BINARY))
    if not DICOMWEB_PLUGIN.is_file():
        missing.append(str(DICOMWEB_PLUGIN))
    for tool in ("storescu", "dciodvfy", "tesseract"):
        if shutil.which(tool) is None:
            missing.append(tool)
    return missing


def ensure_debian_packages(component: str = "orthanc") -> None:
    """Install Orthanc, its DICOMweb plugin, dcmtk, dicom3tools and tesseract with apt-get if any binary is missing.

    Needs root; otherwise fails with a message naming the packages. Debian's orthanc package may start a
    system service of its own: we ignore it and run our own processes (a port clash is reported at start).
    """
    missing = _debian_missing()
    if not missing:
        return
    started = time.monotonic()
    apt_install(component, DEBIAN_PACKAGES, missing)
    still_missing = _debian_missing()
    if still_missing:
        raise ComponentFailed(component, f"still missing after apt-get install: {', '.join(still_missing)}")
    INSTALL_TIMINGS["debian"] = time.monotonic() - started


def ensure_debian_tool(tool: str, package: str, component: str | None = None) -> str:
    """The path of ``tool``, installing Debian's ``package`` with apt-get (as root) if it is missing."""
    found = shutil.which(tool)
    if found:
        return found
    component = component or tool
    apt_install(component, (package,), [tool])
    found = shutil.which(tool)
    if not found:
        raise ComponentFailed(component, f"still missing after apt-get install {package}: {tool}")
    return found


def apt_install(component: str, packages: tuple[str, ...], missing: list[str]) -> None:
    """``apt-get install`` Debian ``packages`` because ``missing`` (binaries, files) are; root only."""
    global _apt_updated
    listed = " ".join(packages)
    if os.geteuid() != 0:
        raise ComponentFailed(component, f"missing {', '.join(missing)}; install the Debian packages as root: "
                                         f"apt-get install -y --no-install-recommends {listed}")
    if shutil.which("apt-get") is None:
        raise ComponentFailed(component, f"missing {', '.join(missing)} and no apt-get; install {listed}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _run(component, ["apt-get", "update"], env=env)
        _apt_updated = True
    _run(component, ["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)


def find_tool(name: str) -> str:
    """Absolute path of a DICOM tool (storescu, dciodvfy), installing the Debian packages if needed."""
    path = shutil.which(name)
    if path is None:
        ensure_debian_packages(name)
        path = shutil.which(name)
    if path is None:
        raise ComponentFailed(name, f"{name} not found on PATH")
    return path
