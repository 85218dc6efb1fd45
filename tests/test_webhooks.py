"""Webhooks to a real receiver on 127.0.0.1: Standard Webhooks signatures checked with the key's
secret, the body equal to the job JSON, retries recorded in the delivery log, a 3xx a failure."""

from __future__ import annotations

import asyncio
import base64
import json
import random

import jobenv
import pytest

from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db import keys
from squeezer.jobs import payload, webhook_signature
from squeezer.jobs.queue import make_app
from squeezer.jobs.webhooks import defer_webhook, deliveries, job_body, retry_delay, webhook_id

OK = jobenv.Answer(204)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = jobenv.start_env(tmp_path_factory.mktemp("webhooks"))
    yield env
    env["db"].close()


async def _deliveries(env, job_id):
    conn = await jobenv.connect(env)
    try:
        return await deliveries(conn, job_id)
    finally:
        await conn.close()


async def _queued_webhooks(env) -> int:
    conn = await jobenv.connect(env)
    try:
        cur = await conn.execute(
            "select count(*) from procrastinate_jobs where task_name = 'squeezer:webhook'")
        return (await cur.fetchone())[0]
    finally:
        await conn.close()


def _drain_until(env, job_id, attempts, svc, timeout=20.0):
    """Drain repeatedly until ``attempts`` deliveries are logged (retries are deferred jobs)."""

    async def run():
        async def enough():
            await jobenv.drain(env, svc)
            return len(await _deliveries(env, job_id)) >= attempts

        await jobenv.wait_for(enough, timeout=timeout, interval=0.05)

    asyncio.run(run())


def test_new_secrets_are_standard_base64_of_32_bytes():
    secret = keys.new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) == 32


def test_signature_matches_the_standard_webhooks_test_vector():
    """The example of the Standard Webhooks specification's reference libraries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhook_signature.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                  body) == expected
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,bm9ldHJlYWw= " + expected}
    webhook_signature.verify(secret, headers, body, now=1614265330 + 10)
    with pytest.raises(webhook_signature.InvalidSignature):
        webhook_signature.verify(secret, headers, body + b" ", now=1614265330)
    with pytest.raises(webhook_signature.InvalidSignature):  # replayed an hour later
        webhook_signature.verify(secret, headers, body, now=1614265330 + 3600)


def test_a_finished_job_is_delivered_signed_with_the_job_json(env, fx):
    with jobenv.Server({"/hook": OK}) as receiver:
        job_id = asyncio.run(jobenv.submit(env, path=fx.text(), options={"preset": "lossless"},
                                           webhook_url=receiver.url("/hook")))
        svc = jobenv.services(env)
        _drain_until(env, job_id, 1, svc)
    (request,) = receiver.hits("/hook")
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    webhook_signature.verify(env["key"].webhook_secret, request.headers, request.body)
    assert request.headers["webhook-id"] == webhook_id(job_id, "succeeded")

    async def expected():
        conn = await jobenv.connect(env)
        try:
            job = await job_rows.get_job(conn, job_id)
            return job, payload.job_json(
                job, input_file=await file_rows.get_file(conn, job.input_file_id),
                output_file=await file_rows.get_file(conn, job.output_file_id),
                base_url=svc.base_url, signing_key=svc.signing_key, deliveries=[])
        finally:
            await conn.close()

    job, body = asyncio.run(expected())
    assert job.state == "succeeded"
    assert json.loads(request.body) == body
    assert body["result"]["download_url"].startswith("http://squeezer.test/v1/downloads/")
    log = asyncio.run(_deliveries(env, job_id))
    assert [(d["attempt"], d["status"], d["error"]) for d in log] == [(1, 204, None)]
    assert log[0]["attempted_at"].endswith("Z")


def test_two_500s_then_200_make_three_attempts_in_the_log(env, fx):
    answers = [jobenv.Answer(500, b"boom"), jobenv.Answer(500, b"boom"), jobenv.Answer(200)]
    with jobenv.Server({"/flaky": answers}) as receiver:
        job_id = asyncio.run(jobenv.submit(env, path=fx.text(),
                                           webhook_url=receiver.url("/flaky")))
        svc = jobenv.services(env, webhooks={"backoff_seconds": 0.05})
        _drain_until(env, job_id, 3, svc)
        asyncio.run(jobenv.drain(env, svc))  # nothing more is queued after the 200
    hits = receiver.hits("/flaky")
    assert len(hits) == 3
    assert len({h.headers["webhook-id"] for h in hits}) == 1  # one event, retried
    assert len({h.body for h in hits}) == 1  # the same bytes every time
    for hit in hits:
        webhook_signature.verify(env["key"].webhook_secret, hit.headers, hit.body)
    log = asyncio.run(_deliveries(env, job_id))
    assert [(d["attempt"], d["status"], d["error"]) for d in log] == [
        (1, 500, "http_status"), (2, 500, "http_status"), (3, 200, None)]

    async def api_view():  # what GET /v1/jobs/{id} shows
        conn = await jobenv.connect(env)
        try:
            job = await job_rows.get_job(conn, job_id)
            return await job_body(conn, job, base_url=svc.base_url, signing_key=svc.signing_key)
        finally:
            await conn.close()

    view = asyncio.run(api_view())
    assert view["webhook"]["url"] == receiver.url("/flaky")
    assert [d["status"] for d in view["webhook"]["deliveries"]] == [500, 500, 200]


def test_a_redirect_is_a_failure_and_is_not_followed(env, tmp_path):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    routes = {"/moved": jobenv.Answer(302, b"", {"Location": "/elsewhere"}), "/elsewhere": OK}
    with jobenv.Server(routes) as receiver:
        job_id = asyncio.run(jobenv.submit(env, path=bad, webhook_url=receiver.url("/moved")))
        svc = jobenv.services(env, webhooks={"attempts": 2, "backoff_seconds": 0})
        _drain_until(env, job_id, 2, svc)
        asyncio.run(jobenv.drain(env, svc))
    assert receiver.hits("/elsewhere") == []
    assert len(receiver.hits("/moved")) == 2  # retried, then given up after webhook_attempts
    log = asyncio.run(_deliveries(env, job_id))
    assert [(d["status"], d["error"]) for d in log] == [(302, "redirect_not_followed")] * 2
    body = json.loads(receiver.hits("/moved")[0].body)
    assert (body["state"], body["error"]["code"]) == ("failed", "unsupported_format")


def test_a_cancelled_job_is_delivered_when_the_api_defers_it(env, fx):
    with jobenv.Server({"/hook": OK}) as receiver:
        job_id = asyncio.run(jobenv.submit(env, path=fx.text(), webhook_url=receiver.url("/hook")))

        async def cancel():
            app = make_app(env["db"].url)
            conn = await jobenv.connect(env)
            try:
                async with app.open_async(), conn.transaction():
                    job = await job_rows.cancel(conn, env["key"].id, job_id)
                    await defer_webhook(app, conn, job)
            finally:
                await conn.close()

        asyncio.run(cancel())
        _drain_until(env, job_id, 1, jobenv.services(env))
    (hit,) = receiver.hits("/hook")
    body = json.loads(hit.body)
    assert (body["state"], body["error"]["code"]) == ("cancelled", "cancelled")
    assert body["result"] is None
    assert hit.headers["webhook-id"] == webhook_id(job_id, "cancelled")


def test_no_webhook_url_queues_nothing(env, fx):
    before = asyncio.run(_queued_webhooks(env))
    job_id = asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(jobenv.drain(env))
    assert asyncio.run(jobenv.job(env, job_id)).state == "succeeded"
    assert asyncio.run(_queued_webhooks(env)) == before
    assert asyncio.run(_deliveries(env, job_id)) == []


def test_a_url_the_policy_refuses_is_logged_once_and_not_retried(env, fx):
    with jobenv.Server({"/hook": OK}) as receiver:
        job_id = asyncio.run(jobenv.submit(env, path=fx.text(), webhook_url=receiver.url("/hook")))
        svc = jobenv.services(env, webhooks={"allow_networks": "", "backoff_seconds": 0})
        _drain_until(env, job_id, 1, svc)
        asyncio.run(jobenv.drain(env, svc))
    assert receiver.requests == []
    log = asyncio.run(_deliveries(env, job_id))
    assert [(d["status"], d["error"]) for d in log] == [(None, "url_not_allowed")]


def test_retry_delays_are_jittered_exponential_capped_and_honour_retry_after():
    rng = random.Random(7).random
    for attempt in range(1, 10):
        ceiling = min(3600.0, 5.0 * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, 5.0, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # full jitter
    assert retry_delay(1, 5.0, retry_after=120, rng=lambda: 0.0) == 120
    assert retry_delay(1, 5.0, retry_after=10 ** 6, rng=lambda: 0.0) == 3600
    assert retry_delay(1, 0, rng=lambda: 1.0) == 0


def test_defer_is_part_of_the_callers_transaction(env, fx):
    """A rolled-back end of job leaves no webhook queued."""
    job_id = asyncio.run(jobenv.submit(env, path=fx.text(), webhook_url="http://127.0.0.1:9/x"))
    before = asyncio.run(_queued_webhooks(env))

    async def rolled_back():
        app = make_app(env["db"].url)
        conn = await jobenv.connect(env)
        try:
            async with app.open_async():
                with pytest.raises(RuntimeError):
                    async with conn.transaction():
                        job = await job_rows.cancel(conn, env["key"].id, job_id)
                        await defer_webhook(app, conn, job)
                        raise RuntimeError("roll back")
        finally:
            await conn.close()

    asyncio.run(rolled_back())
    assert asyncio.run(_queued_webhooks(env)) == before
    assert asyncio.run(jobenv.job(env, job_id)).state == "queued"
    asyncio.run(jobenv.drain(env, jobenv.services(env, webhooks={"attempts": 1})))


def test_410_gone_stops_delivery_for_that_job_while_other_4xx_are_retried(env, fx):
    """Standard Webhooks: a receiver answering ``410 Gone`` asks not to be sent to again; the
    job's delivery log says ``endpoint_gone`` and nothing more is queued.  Any other 4xx keeps
    the documented behaviour: retried with backoff up to ``webhook_attempts``."""
    routes = {"/gone": jobenv.Answer(410), "/missing": jobenv.Answer(404)}
    with jobenv.Server(routes) as receiver:
        gone = asyncio.run(jobenv.submit(env, path=fx.text(), webhook_url=receiver.url("/gone")))
        missing = asyncio.run(jobenv.submit(env, path=fx.text(),
                                            webhook_url=receiver.url("/missing")))
        svc = jobenv.services(env, webhooks={"attempts": 3, "backoff_seconds": 0})
        _drain_until(env, missing, 3, svc)
        asyncio.run(jobenv.drain(env, svc))  # nothing is left queued for either
    assert len(receiver.hits("/gone")) == 1
    assert len(receiver.hits("/missing")) == 3
    gone_log = asyncio.run(_deliveries(env, gone))
    assert [(d["attempt"], d["status"], d["error"]) for d in gone_log] == [
        (1, 410, "endpoint_gone")]
    missing_log = asyncio.run(_deliveries(env, missing))
    assert [(d["attempt"], d["status"], d["error"]) for d in missing_log] == [
        (1, 404, "http_status"), (2, 404, "http_status"), (3, 404, "http_status")]
