"""The web page of the gateway: an HTML shell and its static files (``routes.py``); the page
itself (``static/js``) talks only to the public ``/v1`` API."""

from services.gateway.web.routes import router

__all__ = ["router"]
