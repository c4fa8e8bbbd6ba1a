"""Documents into cards: the readers of uploaded files (DESIGN.md, gateway ingest/)."""
