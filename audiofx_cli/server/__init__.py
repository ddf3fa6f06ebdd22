"""The audiofx server: a warm process that runs `process`, `watch`, `info`, `validate` and
`stages` for thin clients, so shell loops do not pay Python's and torch's start-up on every file.

    paths      where the server lives: a private folder (mode 0700) with its socket
    protocol   JSON lines over a Unix socket, descriptors passed with SCM_RIGHTS, the
               fingerprint that says client and server run the same audiofx
    client     what the `audiofx` entry point calls before importing anything heavy
    control    start (spawn and wait until ready), status and stop, for the CLI and the client
    daemon     the server: accepts, checks the peer's uid, queues, forks one job per command
    job        what a forked job does: adopt the client's descriptors, folder, umask and
               environment, run the command, report its exit code, cancel on request
    journal    temporary files of a job, removed when a job or the server is killed
    warm       the warm-up (imports, each preset once) and what each forked job resets

Everything the client imports (paths, protocol, client, control) is standard library only;
docs/server.md explains the design.
"""
