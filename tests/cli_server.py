"""Serve ``audio_transfer.cli.main.main`` to :mod:`cli_client` processes from inside the test process.

Every ``audio-transfer`` call of a shell script otherwise starts a Python that imports TensorFlow and
loads its base again (seconds each); served here, the scripts run their real commands through the real
parser and verbs at the cost of a function call. Calls are handled one at a time, in a background thread,
with stdout and stderr captured and sent back; every argv is recorded for assertions.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from audio_transfer.cli.main import main

CLIENT = Path(__file__).with_name("cli_client.py")


class CliServer:
    """A Unix-socket server running ``main(argv)`` per connection; use as a context manager.

    Attributes:
        calls: every argv served, in order.
        environment: variables that point a script's ``$AUDIO_TRANSFER_CLI`` at this server.
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="cli-server-")
        self.socket_path = os.path.join(self._folder.name, "cli.sock")
        self.calls: list[list[str]] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def environment(self) -> dict[str, str]:
        return {
            "AUDIO_TRANSFER_CLI": f"{sys.executable} {CLIENT}",
            "AUDIO_TRANSFER_TEST_SOCKET": self.socket_path,
        }

    def __enter__(self) -> CliServer:
        self._listener.bind(self.socket_path)
        self._listener.listen()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._listener.close()
        self._folder.cleanup()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by __exit__
                return
            with connection:
                request = b"".join(iter(lambda c=connection: c.recv(65536), b""))
                reply = self._run(json.loads(request))
                connection.sendall(json.dumps(reply).encode("utf-8"))

    def _run(self, argv: list[str]) -> dict:
        self.calls.append(argv)
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                exit_code = main(argv)
            except SystemExit as exit_:  # argparse errors and --help
                exit_code = exit_.code if isinstance(exit_.code, int) else 1
            except Exception:
                traceback.print_exc()
                exit_code = 1
        return {"stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "exit_code": exit_code}
