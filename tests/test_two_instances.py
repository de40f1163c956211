"""Two service instances, one Redis Cluster, one PostgreSQL: one state between them.

Two gunicorns (two hosts, as far as the service can tell) share a 3-master
cluster and a PostgreSQL directory, with the queue on a single Redis beside the
cluster. Requests are split over both: a code keyed in twenty times at once is
read once, a practice has one live call, and a limit counts both.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devservers.gunicorn_server import gunicorn
from devservers.postgres_server import postgres_available, postgres_server
from devservers.redis_server import RedisProcess
from tests.faults import calls_placed
from tests.gunicorn_flows import TWILIO_TOKEN, production_env
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT
from tests.helpers import twilio_signature as sign
from tests.redis_topologies import RedisClusterProcesses
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, CODEWORD_SPOKEN_EN, OUR_NUMBER, spellings

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")

SIMULTANEOUS = 20


@dataclass(frozen=True)
class Instances:
    """The two servers' URLs and what Twilio was asked."""

    urls: tuple[str, str]
    sent: TwilioRecorder


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory,
    redis_cluster: RedisClusterProcesses,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> Iterator[Instances]:
    redis_cluster.client().flushdb()
    twilio_url, sent = twilio_recorder
    with postgres_server() as database_url:
        env = production_env(
            redis_cluster.url,
            database_url,
            twilio_url,
            QUEUE_REDIS_URL=redis_process.url,
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("metrics")),
        )
        # One after the other: the first creates the tables.
        with gunicorn(env) as first, gunicorn(env) as second:
            yield Instances((first.url, second.url), sent)
    redis_cluster.client().flushdb()


def practice(urls: tuple[str, str], practice_id: str, office: str) -> None:
    body = {
        "name": "Bright Smiles",
        "office_number": office,
        "office_number_verified": True,
        "codeword": CODEWORD,
    }
    response = requests.put(
        f"{urls[0]}/api/v1/practices/{practice_id}", json=body, headers=ADMIN, timeout=10
    )
    assert response.status_code == 201, response.text


def ask_for_call(url: str, practice_id: str) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/verification-calls",
        json={"practice_id": practice_id, "requested_by": "Ana"},
        headers=SUPPORT,
        timeout=10,
    )


def webhook(url: str, public_url: str, form: dict[str, str]) -> requests.Response:
    path = public_url.removeprefix(PUBLIC_BASE_URL)
    return requests.post(
        f"{url}{path}",
        data=form,
        headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, form, TWILIO_TOKEN)},
        timeout=10,
    )


def all_at_once(count: int, send: Callable[[int], requests.Response]) -> list[requests.Response]:
    """``send(i)`` for i in range(count), released together."""
    barrier = threading.Barrier(count)
    responses: list[Any] = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        responses[i] = send(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def answered_call(
    instances: Instances, practice_id: str, office: str
) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """A call asked for on one instance and answered through the other.

    Returns its challenge code, its keys URL, its webhook form and its placed URLs.
    """
    first, second = instances.urls
    asked = ask_for_call(first, practice_id)
    assert asked.status_code == 201, asked.text
    placed = [r for r in calls_placed(instances.sent) if r.form["To"] == office][-1]
    shown = requests.get(
        f"{second}/api/v1/verification-calls/{asked.json()['id']}", headers=SUPPORT, timeout=10
    )
    form = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": shown.json()["call_sid"],
        "From": OUR_NUMBER,
        "To": office,
        "CallStatus": "in-progress",
    }
    greeting = webhook(second, placed.form["Url"], {**form, "AnsweredBy": "human"})
    gather = ET.fromstring(greeting.text).find("Gather")  # noqa: S314 - our own TwiML
    assert gather is not None, greeting.text
    urls = {"status": placed.form["StatusCallback"]}
    return asked.json()["challenge_code"], str(gather.get("action")), form, urls


def test_twenty_simultaneous_right_codes_over_both_instances_disclose_once(
    instances: Instances,
) -> None:
    office = "+12025550161"
    practice(instances.urls, "p-twenty", office)
    code, keys_url, form, _ = answered_call(instances, "p-twenty", office)
    responses = all_at_once(
        SIMULTANEOUS,
        lambda i: webhook(instances.urls[i % 2], keys_url, {**form, "Digits": code}),
    )
    assert all(r.status_code == 200 for r in responses)
    readings = [spellings(ET.fromstring(r.text)) for r in responses]  # noqa: S314
    assert [s for s in readings if s] == [[CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]]
    events = requests.get(
        f"{instances.urls[1]}/api/v1/practices/p-twenty/disclosures", headers=SUPPORT, timeout=10
    ).json()["events"]
    assert [e["outcome"] for e in events if e["channel"] == "voice"] == ["disclosed"]


def test_one_live_call_per_practice_holds_across_both_instances(instances: Instances) -> None:
    office = "+12025550162"
    practice(instances.urls, "p-live", office)
    responses = all_at_once(SIMULTANEOUS, lambda i: ask_for_call(instances.urls[i % 2], "p-live"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    [created] = [r for r in responses if r.status_code == 201]
    # The rest are refused: 409 naming the live call, or 429 once the practice's three
    # slots an hour were reserved by requests that then found the call live.
    refused = [r for r in responses if r.status_code != 201]
    assert {r.status_code for r in refused} <= {409, 429}
    live = [r for r in refused if r.status_code == 409]
    assert live, statuses
    assert {r.json()["error"]["live_call_id"] for r in live} == {created.json()["id"]}
    assert len([r for r in calls_placed(instances.sent) if r.form["To"] == office]) == 1


def test_a_limit_counts_requests_to_both_instances(instances: Instances) -> None:
    """Three calls an hour per practice (the default), whichever instance is asked."""
    office = "+12025550163"
    practice(instances.urls, "p-limit", office)
    for turn in range(3):
        _, _, form, urls = answered_call(instances, "p-limit", office)
        ended = webhook(
            instances.urls[turn % 2], urls["status"], {**form, "CallStatus": "completed"}
        )
        assert ended.status_code == 200
    refused = ask_for_call(instances.urls[1], "p-limit")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert ask_for_call(instances.urls[0], "p-limit").status_code == 429


def test_the_instances_share_nothing_but_redis_and_the_database(instances: Instances) -> None:
    first, second = instances.urls
    assert first != second
    for url in instances.urls:
        ready = requests.get(f"{url}/readyz", timeout=10).json()
        assert ready["checks"] == {"redis": "ok", "database": "ok"}
