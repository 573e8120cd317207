"""``python tests/cli_client.py ARGS...``: run ``audio-transfer ARGS`` in the test process serving the socket.

The example scripts call the CLI through ``$AUDIO_TRANSFER_CLI``; pointing it here makes each call cost a
socket round trip instead of a fresh Python importing TensorFlow (see :mod:`cli_server`). Standard library
only, so it starts in milliseconds.
"""

import json
import os
import socket
import sys

SOCKET_VARIABLE = "AUDIO_TRANSFER_TEST_SOCKET"


def main() -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(os.environ[SOCKET_VARIABLE])
        connection.sendall(json.dumps(sys.argv[1:]).encode("utf-8"))
        connection.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: connection.recv(65536), b""))
    result = json.loads(reply)
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return result["exit_code"]


if __name__ == "__main__":
    raise SystemExit(main())
