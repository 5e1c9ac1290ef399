"""The Kubernetes manifests agree with the CLI: the arguments parse, the worker finds the master's
Service, the Service has a port per group, and the master expects as many workers as are deployed."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.groups import GROUP_NAMES
from orchestrator.local_stack import REPO_ROOT
from orchestrator.remote_worker import build_parser as worker_parser
from run_load_tests import build_parser

K8S = REPO_ROOT / "deploy" / "k8s"


def documents(name: str) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(Path(K8S / name).read_text())}


def test_master_and_workers_fit_together():
    master, worker = documents("master.yaml"), documents("worker.yaml")["Deployment"]
    service = master["Service"]
    master_args = build_parser().parse_args(master["Job"]["spec"]["template"]["spec"]["containers"][0]["args"])
    worker_args = worker_parser().parse_args(worker["spec"]["template"]["spec"]["containers"][0]["args"][1:])
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    assert worker_args.master_host == service["metadata"]["name"]
    assert master_args.master_bind_host == "0.0.0.0" and master_args.expect_workers == worker["spec"]["replicas"]
    ports = sorted(p["port"] for p in service["spec"]["ports"])
    assert ports == [master_args.master_bind_port + k for k in range(len(GROUP_NAMES))]
    assert worker_args.master_port == master_args.master_bind_port
    assert master["Job"]["spec"]["activeDeadlineSeconds"] > 0  # bounded
