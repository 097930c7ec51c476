"""An unexpected exception in an endpoint answers 500 in the error shape,
with a reference to the log and no traceback (the app in-process, over
httpx's ASGI transport)."""
from __future__ import annotations

import asyncio

import httpx

from gan2x.service.app import create_app
from gan2x.service.config import ServiceConfig


def test_an_unexpected_failure_is_a_500_without_a_traceback(tmp_path, caplog):
    config = ServiceConfig(data_dir=tmp_path / "data", token_file=tmp_path / "token", workers=0)
    app = create_app(config)
    token = config.token_file.read_text().strip()

    @app.get("/v1/explode")
    def explode():
        raise RuntimeError("secret internal detail at /home/someone/file.py line 12")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            assert (await client.get("/v1/capabilities")).status_code == 401
            return await client.get("/v1/explode", headers={"Authorization": f"Bearer {token}"})

    response = asyncio.run(call())
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "reference" in error["message"]
    assert "secret" not in response.text and "Traceback" not in response.text
    reference = error["message"].split("reference ")[1].split(")")[0]
    assert any(reference in record.getMessage() for record in caplog.records)  # the log has it
