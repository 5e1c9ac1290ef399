"""A real local Cosmos DB SQL-API server: `@vercel/cosmosdb-server` (npm, in-memory) under node.

Installed project-locally with `npm ci --prefix stack`; started on 127.0.0.1, a free port, plain HTTP
(the package's own CLI, `--no-ssl --host 127.0.0.1`). The azure-cosmos SDK talks to it with
`enable_endpoint_discovery=False` (the server advertises https:// locations it does not serve).

    server = CosmosServer(log_dir).start()
    server.endpoint, server.key   # http://127.0.0.1:PORT, the well-known emulator key
    server.stop()

The key is the public Cosmos emulator key; it is still handled as a secret and never logged.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator.local_stack import REPO_ROOT, StackError
from orchestrator.ports import free_port

STACK_DIR = REPO_ROOT / "stack"
CLI = STACK_DIR / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"
# The documented, public key of the Azure Cosmos DB emulator (the local server accepts any key).
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
FIX = "npm ci --prefix stack"


class CosmosServer:
    """Context manager too: `with CosmosServer(log_dir) as cosmos: cosmos.endpoint`."""

    def __init__(self, log_dir: Path, ready_timeout_s: float = 20.0) -> None:
        self.log_dir = Path(log_dir)
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.key = EMULATOR_KEY
        self._process: subprocess.Popen | None = None
        self._log = None

    def __repr__(self) -> str:  # never shows the key
        return f"CosmosServer(endpoint={self.endpoint!r})"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "cosmosdb-server.log"

    @staticmethod
    def node_binary() -> str:
        node = shutil.which("node")
        if not node:
            raise StackError(f"no node: install Node.js 20+ (e.g. apt-get install nodejs npm), then run {FIX}")
        if not CLI.exists():
            raise StackError(f"@vercel/cosmosdb-server is not installed: run {FIX}")
        return node

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/", timeout=1.0) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return True  # it answered HTTP
        except (OSError, ValueError):
            return False

    def start(self) -> "CosmosServer":
        node = self.node_binary()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._log = open(self.log_path, "wb")
        self._process = subprocess.Popen(
            [node, str(CLI), "--port", str(self.port), "--host", "127.0.0.1", "--no-ssl"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=STACK_DIR)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                tail = self.log_path.read_text(errors="replace")[-600:].strip()
                self.stop()
                raise StackError(f"cosmosdb-server exited with code {code} while starting: {tail}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise StackError(f"cosmosdb-server did not become ready within {self.ready_timeout_s:g} s (log: {self.log_path})")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "CosmosServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
