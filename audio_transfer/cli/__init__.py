"""The ``audio-transfer`` command line.

Results go to stdout (one JSON object with ``--json``), logs to stderr.
"""
