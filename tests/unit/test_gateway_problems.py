"""problem+json (RFC 9457): the Problem type, its registry, validation errors, and the FastAPI
handlers that answer every error with it."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError

from services.gateway.problem_handlers import http_exception_problem, install_problem_handlers
from services.gateway.problems import (
    PROBLEM_JSON,
    PROBLEMS,
    Problem,
    code_for_status,
    not_found,
    validation_problem,
)

# --- Problem --------------------------------------------------------------------------------


def test_problem_body_has_the_rfc_members_the_code_and_extras() -> None:
    problem = Problem("too_many_cards", "Over 2000 cards.", limit=2000)
    assert problem.to_body() == {
        "type": "https://cardflow.dev/problems/too_many_cards",
        "title": "Too many cards",
        "status": 413,
        "detail": "Over 2000 cards.",
        "code": "too_many_cards",
        "limit": 2000,
    }
    assert str(problem) == "Over 2000 cards."
    assert "too_many_cards" in repr(problem)


def test_instance_is_set_on_creation_or_when_rendered() -> None:
    problem = Problem("not_found", "gone", instance="/v1/runs/r1")
    assert problem.to_body()["instance"] == "/v1/runs/r1"
    assert problem.to_body("/other")["instance"] == "/other"


def test_status_and_title_may_be_overridden_and_headers_stay_out_of_the_body() -> None:
    problem = Problem(
        "rate_limited", "Slow down.", status=429, title="Easy", headers={"Retry-After": "3"}
    )
    body = problem.to_body()
    assert (body["status"], body["title"]) == (429, "Easy")
    assert problem.headers == {"Retry-After": "3"}
    assert "Retry-After" not in body


def test_unregistered_codes_and_reserved_extras_are_refused() -> None:
    with pytest.raises(ValueError, match="unregistered"):
        Problem("teapot", "no")
    with pytest.raises(ValueError, match="type"):
        Problem("conflict", "no", type="x")


def test_registry_has_the_codes_the_api_uses_with_their_statuses() -> None:
    expected = {
        "not_found": 404,
        "unauthorized": 401,
        "validation_failed": 422,
        "conflict": 409,
        "idempotency_conflict": 422,
        "idempotency_in_progress": 409,
        "upload_too_large": 413,
        "too_many_cards": 413,
        "card_too_long": 422,
        "unsupported_media_type": 415,
        "unreadable_file": 415,
        "no_cards": 422,
        "input_invalid": 422,
        "rate_limited": 429,
        "internal": 500,
    }
    assert {code: PROBLEMS[code].status for code in expected} == expected
    assert "not_modified" not in PROBLEMS
    for code, spec in PROBLEMS.items():
        assert spec.code == code
        assert spec.title
        assert code.isidentifier()
        assert code == code.lower()


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "bad_request"), (404, "not_found"), (405, "method_not_allowed"), (418, "http_error")],
)
def test_bare_statuses_map_to_codes(status: int, code: str) -> None:
    assert code_for_status(status) == code
    assert code_for_status(502) == "internal"


def test_not_found_does_not_say_whose_it_is() -> None:
    body = not_found("run", "r1").to_body()
    assert body["status"] == 404
    assert body["detail"] == "No run with id 'r1'."
    assert (body["resource"], body["id"]) == ("run", "r1")


# --- validation -----------------------------------------------------------------------------


class Card(BaseModel):
    title: str = Field(min_length=1)
    body: str


class Cards(BaseModel):
    cards: list[Card]


def test_pydantic_errors_become_a_422_with_loc_msg_and_type_only() -> None:
    with pytest.raises(ValidationError) as caught:
        Cards.model_validate({"cards": [{"title": "", "body": "secret text"}, {"title": "x"}]})
    problem = validation_problem(caught.value.errors())
    body = problem.to_body()
    assert body["status"] == 422
    assert body["code"] == "validation_failed"
    assert body["errors"] == [
        {
            "loc": ["cards", 0, "title"],
            "msg": "String should have at least 1 character",
            "type": "string_too_short",
        },
        {"loc": ["cards", 1, "body"], "msg": "Field required", "type": "missing"},
    ]
    assert body["detail"].startswith("2 validation errors: cards.0.title: String should")
    assert "secret text" not in str(body)


def test_validation_detail_is_short_with_many_errors() -> None:
    errors = [{"loc": ("body", "cards", i), "msg": "bad"} for i in range(10)]
    problem = validation_problem(errors)
    assert problem.detail.endswith("(and 7 more)")
    assert len(problem.extra["errors"]) == 10
    assert problem.extra["errors"][0] == {"loc": ["body", "cards", 0], "msg": "bad"}


def test_validation_loc_tolerates_odd_shapes() -> None:
    problem = validation_problem([{"loc": "body", "msg": "x"}, {"msg": "y"}, {"loc": (1.5,)}])
    assert [e["loc"] for e in problem.extra["errors"]] == [["body"], [], ["1.5"]]
    assert validation_problem([]).detail == "The request is invalid."
    assert validation_problem([], detail="custom").detail == "custom"


# --- handlers on a tiny app -----------------------------------------------------------------


def tiny_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/problem")
    async def problem() -> None:
        raise Problem("rate_limited", "Slow down.", headers={"Retry-After": "7"}, limit=5)

    @app.post("/cards")
    async def cards(payload: Cards) -> dict[str, int]:
        return {"count": len(payload.cards)}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/http")
    async def http() -> None:
        raise HTTPException(status_code=409, detail="Run already finished.")

    @app.get("/http-bare")
    async def http_bare() -> None:
        raise HTTPException(status_code=403)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(tiny_app(), raise_server_exceptions=False)


def assert_problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://cardflow.dev/problems/{code}"
    return body  # type: ignore[no-any-return]


def test_a_raised_problem_is_answered_with_its_headers_and_instance(client: TestClient) -> None:
    response = client.get("/problem")
    body = assert_problem(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "7"
    assert body["instance"] == "/problem"
    assert body["limit"] == 5


def test_request_validation_is_a_422_problem(client: TestClient) -> None:
    response = client.post("/cards", json={"cards": [{"title": "a"}]})
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [
        {"loc": ["body", "cards", 0, "body"], "msg": "Field required", "type": "missing"}
    ]
    body = assert_problem(client.get("/items/abc"), 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["path", "item_id"]


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/cards", content=b'{"cards": [', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["type"] == "json_invalid"


def test_unknown_path_and_wrong_method_are_problems(client: TestClient) -> None:
    body = assert_problem(client.get("/nowhere"), 404, "not_found")
    assert body["detail"] == "Nothing is served at this path."
    response = client.delete("/problem")
    body = assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


def test_http_exceptions_keep_their_detail_or_get_the_standard_phrase(client: TestClient) -> None:
    assert assert_problem(client.get("/http"), 409, "conflict")["detail"] == "Run already finished."
    assert assert_problem(client.get("/http-bare"), 403, "forbidden")["detail"] == "Forbidden"


def test_unhandled_errors_are_a_500_without_internals(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.gateway.problem_handlers"):
        response = client.get("/boom")
    body = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] == "An unexpected error occurred; it has been logged."
    assert any(record.exc_info for record in caplog.records)


def test_http_exception_problem_for_odd_statuses() -> None:
    problem = http_exception_problem(HTTPException(status_code=418))
    assert (problem.code, problem.status, problem.detail) == ("http_error", 418, "I'm a Teapot")
