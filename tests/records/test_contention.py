"""A write that loses every retry to concurrent writers is 409 `transient` with Retry-After:
told apart from a business refusal, which sending again cannot change."""

import orjson
import pytest
from fastapi import FastAPI

from app.errors import Contention, WriteConflict
from app.fhir.outcomes import error_response
from app.storage.repository import Repository
from tests.callers import scoped
from tests.conftest import app_context


async def test_a_write_that_loses_every_retry_is_contention(app: FastAPI) -> None:
    store = app_context(app).store
    attempts: list[int] = []

    async def always_loses(_repository: Repository) -> None:
        attempts.append(1)
        raise WriteConflict("a concurrent writer won")

    with pytest.raises(Contention) as raised:
        await store.write(scoped("system/*.cruds"), always_loses)
    assert len(attempts) == store.write_retries
    response = error_response(raised.value)
    (issue,) = orjson.loads(response.body)["issue"]
    assert response.status_code == 409 and response.headers["retry-after"] == "1"
    assert issue["code"] == "transient" and "details" not in issue
    assert "send it again" in issue["diagnostics"]
