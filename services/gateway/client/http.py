"""I/O: the gateway's HTTP API, the few calls the client makes, over httpx.

Every failure becomes one of two exceptions the commands turn into messages and exit codes:
:class:`ApiError` (an HTTP error answer, problem+json when the gateway wrote it) or
:class:`Unreachable` (no answer at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from contracts.uploads import content_type_of
from services.gateway.client.progress_view import one_line

USER_AGENT = "cardflow-cli"
START_ATTEMPTS = 3
"""Tries of ``POST .../runs`` when there is no answer (the Idempotency-Key makes it safe)."""


class ApiError(Exception):
    """An HTTP error answer (problem+json when the gateway wrote it)."""

    def __init__(self, status: int, code: str, detail: str, body: Any = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail, self.body = status, code, detail, body

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            code = str(body.get("code") or f"http_{response.status_code}")
            detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
        else:
            code = f"http_{response.status_code}"
            detail = one_line(response.text)[:300] or response.reason_phrase
        return cls(response.status_code, code, detail, body)


class Unreachable(Exception):
    """No HTTP answer at all (refused, DNS, timeout)."""

    def __init__(self, url: str, error: BaseException) -> None:
        super().__init__(str(error))
        self.url, self.error = url, error


class Gateway:
    """The few calls the CLI makes; raises ApiError or Unreachable. ``transport`` and
    ``sleep`` are for tests (a fake gateway, no waiting)."""

    def __init__(
        self,
        url: str,
        key: str | None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": USER_AGENT}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.url = url
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=url,
            headers=headers,
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(self.url, error) from error
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def create_project(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/v1/projects", json={"name": name}).json()
        return result

    def upload(self, project_id: str, path: Path) -> dict[str, Any]:
        """One file, sent with the content type its extension has (``contracts.uploads``,
        the table the gateway reads it by)."""
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, content_type_of(str(path)))}
            response = self.request("POST", f"/v1/projects/{project_id}/uploads", files=files)
        result: dict[str, Any] = response.json()
        return result

    def start_run(self, project_id: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """With an Idempotency-Key, so a retry after a lost answer starts no second run."""
        path = f"/v1/projects/{project_id}/runs"
        for attempt in range(START_ATTEMPTS):
            try:
                response = self.request(
                    "POST", path, json=dict(body), headers={"Idempotency-Key": key}
                )
            except Unreachable:
                if attempt == START_ATTEMPTS - 1:
                    raise
                self.sleep(1.0 + attempt)
                continue
            result: dict[str, Any] = response.json()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def poll_run(
        self, run_id: str, etag: str | None, wait_s: float
    ) -> tuple[dict[str, Any] | None, str | None]:
        """``GET /v1/runs/{id}?wait=`` with If-None-Match: (run, its ETag), or (None, the
        same ETag) when nothing changed within ``wait_s`` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        params = {"wait": f"{wait_s:g}"} if wait_s else {}
        response = self.request(
            "GET",
            f"/v1/runs/{run_id}",
            params=params,
            headers=headers,
            timeout=httpx.Timeout(wait_s + 20.0, connect=5.0),
        )
        if response.status_code == 304:
            return None, etag
        run: dict[str, Any] = response.json()
        return run, response.headers.get("ETag") or etag_of(run)

    def readiness(self) -> tuple[int, Any]:
        """``GET /readyz`` (no key needed): (status code, body). A 503 is an answer here
        ("not ready", with what is missing), not an error."""
        try:
            response = self.http.get("/readyz", timeout=5)
        except httpx.TransportError as error:
            raise Unreachable(self.url, error) from error
        try:
            body = response.json()
        except ValueError:
            body = {"status": response.status_code, "body": response.text}
        return response.status_code, body


def etag_of(run: Mapping[str, Any]) -> str | None:
    """The ETag the gateway gives a run object (its version), for a run read without one."""
    version = run.get("version")
    return f'"v{version}"' if version is not None else None
