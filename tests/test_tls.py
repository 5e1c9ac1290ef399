"""TLS: certificates are verified for https and wss unless --insecure, which the report then warns about.
The reference target serves TLS with a self-signed certificate made here with openssl."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
import pytest

from orchestrator.local_stack import REPO_ROOT
from orchestrator.ports import free_port
from tests.conftest import latest_report, run_cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")


@pytest.fixture
def tls_target(tmp_path):
    """The reference target on https/wss with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    log = (tmp_path / "target.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "target", "--port", str(port), "--latency-mode", "fixed",
                                "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)], cwd=REPO_ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/api/v1/health", verify=str(cert), timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)  # polling a server that is starting: there is no event to wait on
        else:
            raise AssertionError("the TLS target did not come up: " + (tmp_path / "target.log").read_text()[-500:])
        yield url
    finally:
        process.kill()
        process.wait()
        log.close()


def test_an_unverifiable_certificate_is_refused_at_preflight(tls_target, tmp_path):
    result = run_cli(["--host", tls_target, "--group", "websocket", "-t", "4s", "--results-dir", str(tmp_path)], timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate verify failed" in result.stderr, result.stderr


def test_insecure_runs_over_wss_and_the_report_warns(tls_target, tmp_path):
    result = run_cli(["--host", tls_target, "--insecure", "--group", "websocket", "--websocket-users", "1", "-t", "5s",
                      "--turns-per-call", "1", "--results-dir", str(tmp_path)], timeout=120)
    assert result.returncode in (0, 1, 4), result.stdout + result.stderr
    report = latest_report(tmp_path)
    assert report["run"]["host"].startswith("https://")
    assert report["metrics"]["ws_handshake"]["count"] > 0 and report["summary"]["calls_completed"] > 0  # wss worked
    warning = next(m for m in report["summary"]["messages"] if "TLS certificates were not verified" in m)
    assert warning in result.stdout  # the summary a person reads says so too
    assert "TLS certificates were not verified" in (tmp_path / "latest" / "report.html").read_text()
