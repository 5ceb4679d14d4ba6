"""Every URL the node prints after ``make up`` opens in a real headless Chromium and shows what its line promises.

The lines come from ``describe()`` (what ``make up`` and ``make demo`` print), on the real stack. Each http URL is
opened in Debian's Chromium with the credentials the printed line points at (user and password file); the
search and the job service's tool list, printed as curl commands, are run as printed. A URL the test does not know how to check fails the test:
a new printed URL must come with its check.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest

from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import StudyOutcome, describe, push_sample
from eucaim_node.stack.browser import dump_dom

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

URL = re.compile(r"https?://[^\s'\"]+")


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"))


def page_text(dom: str) -> str:
    """The text Chromium shows for a plain-text or JSON document (inside its <pre>), entities decoded."""
    import html

    match = re.search(r"<pre[^>]*>(.*?)</pre>", dom, re.S)
    return html.unescape(match.group(1) if match else re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def printed(stack, observer, tmp_path_factory):
    """What the node prints, with at least one study in both Orthancs."""
    patient = SamplePatient(name="URLPATIENT^ADA", patient_id=f"URL-{time.monotonic_ns()}", accession_number="ACCURL1")
    sample = push_sample(stack, tmp_path_factory.mktemp("urls"), patient=patient, seed=patient.patient_id, series=1,
                         instances_per_series=1)
    key = observer.study_key(sample.study_instance_uid)
    deadline = time.monotonic() + 120
    while observer.research_study_id(key) is None:
        assert time.monotonic() < deadline, "the sample did not reach the research Orthanc"
        time.sleep(0.5)
    return describe(stack, StudyOutcome(study_key=key))


def test_every_printed_url_opens_in_chromium_and_shows_what_it_promises(stack, printed):
    lines = printed.splitlines()
    checked: set[str] = set()
    for n, line in enumerate(lines):
        for url in URL.findall(line):
            if line.lstrip().startswith("curl "):
                continue  # run as a command below
            if "Orthanc" in line:
                instance = "clinical" if "Clinical" in line else "research"
                credentials = lines[n + 2].strip()  # "<instance>: user 'x', password in F", two lines below
                user = re.search(r"user '([^']+)'", credentials).group(1)
                password = open(re.search(r"password in (\S+)", credentials).group(1)).read().strip()
                assert credentials.startswith(instance) and (user, password) == stack.orthanc_auth(instance)
                studies = json.loads(page_text(dump_dom(with_credentials(url, user, password))))
                # The promise: the instance's study list, as JSON, with the de-identified (or clinical) tags.
                assert studies and all("MainDicomTags" in s and "PatientMainDicomTags" in s for s in studies), url
                names = {s["PatientMainDicomTags"].get("PatientName", "") for s in studies}
                assert ("URLPATIENT^ADA" in names) is (instance == "clinical"), names  # research holds no clear name
                # Without the printed credentials the page is refused, not shown.
                assert httpx.get(url, timeout=10).status_code == 401
            elif "witness" in line:
                assert re.fullmatch(r"[\w.-]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+", page_text(dump_dom(url)).strip()), url
            elif "catalogue" in line:
                text = page_text(dump_dom(url))
                assert "dcat:Catalog" in text and "dcat:Dataset" in text, text[:300]
            else:
                pytest.fail(f"printed URL with no check: {url} in {line!r}")
            checked.add(url)
    assert len(checked) == 4, checked  # two Orthancs, the witness, the catalogue
    # The federated search, then the job service's tools (Jobman's GET .../images), each run as printed.
    search, images = (line.strip() for line in lines if line.strip().startswith("curl "))
    done = subprocess.run(["bash", "-c", search], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "collections" in json.loads(done.stdout)
    done = subprocess.run(["bash", "-c", images], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "eucaim/series-stats" in {repo["name"] for repo in json.loads(done.stdout)["data"]}
