"""An argparse parser whose errors are one line and exit 2, not a usage block (--help has that)."""

from __future__ import annotations

import argparse


class OneLineErrors(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
