"""The ``cardflow`` command line's client of the gateway's public HTTP API (DESIGN.md, v1):
upload documents, start and follow runs, list them, export backlogs, read quality reports.

    cardflow run FILE... [--project ID | --name NAME] [--stage STAGE] [--detach]
    cardflow status RUN [--follow]
    cardflow runs [--project ID]
    cardflow export PROJECT [--format json|csv|markdown] [-o FILE]
    cardflow quality PROJECT | questions PROJECT
    cardflow cancel RUN | retry RUN
    cardflow health

Exit codes (:mod:`exits`): 0 the run succeeded (or the command did what it was asked); 1 the
run ended partial, failed or cancelled; 2 a usage error, an API error or no gateway; 130
Ctrl-C (the run goes on: Ctrl-C only detaches).

It knows the API, not the server: it imports ``contracts`` (the vocabulary both ends share),
the standard library and httpx, never the rest of ``services.gateway`` nor
``services.runtime`` (an import-linter contract in pyproject.toml), so it renders the API's
JSON and could ship on its own. The console script's entry is ``services.gateway.cardflow``,
which also gives ``cardflow dlq`` to the program that answers it.

Pure: :mod:`args` (arguments, request bodies), :mod:`keyfile` (where the API key is; its
reads at the edge), :mod:`exits`, :mod:`messages`, :mod:`live` (the live view as text),
:mod:`progress_view` and :mod:`quality_view` (the API's JSON to lines).
I/O: :mod:`http` (the gateway over httpx), :mod:`console` (the terminal), :mod:`context`,
:mod:`follow` (long-polling a run), :mod:`commands` (one function per command), :mod:`main`.
"""
