"""python -m services.gateway: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from services.runtime.logging import configure_logging
from services.runtime.settings import settings_for


def main() -> None:
    settings = settings_for("gateway")
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.kafka_graceful_timeout_s),
    )


if __name__ == "__main__":
    main()
