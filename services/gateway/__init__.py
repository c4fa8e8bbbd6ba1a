"""The gateway: HTTP API, read model, web page and CLI client (the API grows in issue 4)."""
