"""The gateway's read model: its tables, the projection of progress and domain events into
them (one handler per progress kind), the run object computed from a run's items, and the
queries the API answers from. It imports no part of the server above it (API, commands, web,
ingestion, the client): import-linter checks it."""
