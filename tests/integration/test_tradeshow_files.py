"""Badge-scan files through the real route, read back from `lead.interactions` independently.

Every export under tests/fixtures/tradeshow is sent as a form upload (`curl -F`) and as a
raw text/csv body; what arrives on the topic is compared with what the file says.
"""

from __future__ import annotations

import codecs
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.settings import Settings
from shared.topics import INTERACTIONS
from tests.kafka_reader import ReadRecord, read_until
from tests.stacks import ingest_in_process

pytestmark = pytest.mark.integration

ALL = {"X-API-Key": "all-channels-key"}
WEB_ONLY = {"X-API-Key": "web-only-key"}
CSV = {**ALL, "Content-Type": "text/csv"}
FIXTURES = Path(__file__).parents[1] / "fixtures" / "tradeshow"
ROUTE = "/v1/imports/tradeshow"
ANNA, BEN = "anna.schmidt@example.com", "ben.carter@example.com"
CHLOE, JUERGEN = "chloe.martin@example.com", "juergen.weiss@example.com"


@dataclass(frozen=True)
class Expected:
    """What a fixture should become: per email the time, contact and properties it holds."""

    rows: int
    rejected: dict[int, str]  # line -> the field named first
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def scan(time: str | None, properties: dict[str, str] | None = None, **contact: Any) -> Any:
    return {"time": time, "contact": contact, "properties": properties or {}}


PRETIX = Expected(
    rows=4,
    rejected={4: "time"},  # Chloé never checked in: no scan
    records={
        ANNA: scan(
            "2024-10-24T09:14:00+00:00",
            {"company_size": "51-200", "order_code": "F8VVL", "price": "0.00"},
            first_name="Anna",
            last_name="Schmidt",
            company="Nordlicht Logistik GmbH",
            phone="+49 30 1234567",
        ),
        BEN: scan(
            "2024-10-24T10:02:00+00:00",
            {"voucher_code": "EARLYBIRD"},
            company="Carter & Finch, Ltd",
            phone="+44 20 7946 0018",
        ),
        JUERGEN: scan("2024-10-25T08:55:00+00:00", first_name="Jürgen", last_name="Weiß"),
    },
)
EXPECTED = {
    "eventyay_leads.csv": Expected(
        rows=4,
        rejected={5: "contact"},  # the badge had no e-mail
        records={
            ANNA: scan(
                "2024-10-24T09:14:03+00:00",
                {"booth": "Hall A, Stand 12", "notes": "Wants a demo, call next week"},
                first_name="Anna",
                last_name="Schmidt",
            ),
            BEN: scan("2024-10-24T10:02:47+00:00", {"booth_id": "A-12", "scan_type": "lead"}),
            CHLOE: scan(
                "2024-10-24T13:41:19+00:00",
                {"notes": 'Asked for ""Pro"" pricing', "tags": "pricing"},
                first_name="Chloé",
            ),
        },
    ),
    "pretix_checkin_list.csv": PRETIX,
    "pretix_checkin_list_semicolon.csv": PRETIX,
    "excel_de_bom_semicolon_guards.csv": Expected(
        rows=3,
        rejected={},
        records={
            ANNA: scan("2024-10-24T09:14:00+00:00", {"price": "0,00"}, phone="0049 30 1234567"),
            BEN: scan(
                "2024-10-24T10:02:00+00:00",
                company="Carter & Finch; Ltd",
                phone="+44 20 7946 0018",
            ),
            JUERGEN: scan("2024-10-25T08:55:00+00:00", phone="030 98765432"),
        },
    ),
    "validar_swapcard_leads.csv": Expected(
        rows=3,
        rejected={},
        records={
            ANNA: scan(None, job_title="Head of Operations", country="DE"),
            BEN: scan(None, company="Carter & Finch, Ltd", country="GB"),
            CHLOE: scan(None, first_name="Chloé", last_name="Martin", country="FR"),
        },
    ),
    "talque_lead_list.csv": Expected(
        rows=3,
        rejected={},
        records={
            ANNA: scan(None, {"origin": "Chat"}, company="Nordlicht Logistik GmbH", country="DE"),
            BEN: scan(None, {"origin": "Chat"}, job_title="CTO", country="GB"),
            JUERGEN: scan(None, {"origin": "Chat"}, job_title="Einkaufsleiter", country="DE"),
        },
    ),
}


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with ingest_in_process(settings) as http:
        yield http


async def upload(
    client: httpx.AsyncClient, data: bytes, campaign: str, *, form: bool, **query: str
) -> httpx.Response:
    params = {"campaign": campaign, **query}
    if form:  # as curl -F and browsers send it (Windows names a .csv application/vnd.ms-excel)
        files = {"file": ("scans.csv", data, "application/vnd.ms-excel")}
        return await client.post(ROUTE, params=params, files=files, headers=ALL)
    return await client.post(ROUTE, params=params, content=data, headers=CSV)


def by_campaign(records: list[ReadRecord]) -> dict[str, list[ReadRecord]]:
    found: dict[str, list[ReadRecord]] = {}
    for record in records:
        found.setdefault(record.value["data"].get("campaign") or "", []).append(record)
    return found


def assert_holds(record: ReadRecord, expected: dict[str, Any], uploaded_at: datetime) -> None:
    data = record.value["data"]
    assert record.value["type"] == "leadflow.interaction.tradeshow.badge_scan"
    assert record.value["source"] == "/ingest/imports/tradeshow"
    assert record.key == data["contact"]["email"]
    moment = datetime.fromisoformat(data["time"])
    if expected["time"] is None:  # the file has no scan time: recorded at receipt
        assert moment >= uploaded_at
    else:
        assert moment == datetime.fromisoformat(expected["time"])
    assert {key: data["contact"].get(key) for key in expected["contact"]} == expected["contact"]
    properties = data["properties"]
    assert {key: properties.get(key) for key in expected["properties"]} == expected["properties"]


async def test_every_export_as_a_form_upload_and_as_raw_csv_reaches_the_topic(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    uploaded_at = datetime.now(UTC).replace(microsecond=0)
    run = uuid.uuid4().hex[:8]
    campaigns: dict[str, tuple[str, Expected]] = {}
    for name, expected in EXPECTED.items():
        for form in (True, False):
            campaign = f"{run}-{Path(name).stem.replace('_', '-')}-{'form' if form else 'csv'}"
            campaigns[campaign] = (name, expected)
            response = await upload(client, (FIXTURES / name).read_bytes(), campaign, form=form)
            assert response.status_code == 200, (name, response.text)
            report = response.json()
            counts = (report["rows"], report["accepted"], report["rejected"])
            assert counts == (expected.rows, len(expected.records), len(expected.rejected)), name
            rejected = {row["line"]: row["errors"][0]["field"] for row in report["rejected_rows"]}
            assert rejected == expected.rejected, name
            assert report["dry_run"] is False
            assert report["preview"] == []
    total = sum(len(expected.records) for _, expected in campaigns.values())

    def arrived(records: list[ReadRecord]) -> bool:
        return (
            sum(len(found) for c, found in by_campaign(records).items() if c in campaigns) >= total
        )

    found = by_campaign(await read_until(settings.require_broker(), INTERACTIONS.name, arrived))
    for campaign, (name, expected) in campaigns.items():
        records = {record.value["data"]["contact"]["email"]: record for record in found[campaign]}
        assert sorted(records) == sorted(expected.records), (name, campaign)
        assert len(found[campaign]) == len(expected.records), (name, campaign)
        for email, want in expected.records.items():
            assert_holds(records[email], want, uploaded_at)


async def test_uploading_a_file_again_records_each_scan_under_the_same_id(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    campaign = f"again-{uuid.uuid4().hex[:8]}"
    data = (FIXTURES / "pretix_checkin_list.csv").read_bytes()
    semicolons = (FIXTURES / "pretix_checkin_list_semicolon.csv").read_bytes()
    for body, form in ((data, True), (data, False), (semicolons, True)):
        assert (await upload(client, body, campaign, form=form)).json()["accepted"] == 3

    def arrived(records: list[ReadRecord]) -> bool:
        return len(by_campaign(records).get(campaign, [])) >= 9

    records = by_campaign(await read_until(settings.require_broker(), INTERACTIONS.name, arrived))[
        campaign
    ]
    assert len(records) == 9
    assert len({record.value["id"] for record in records}) == 3  # downstream dedupes by id


async def end_offsets(bootstrap: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(INTERACTIONS.name, partition)
            for partition in consumer.partitions_for_topic(INTERACTIONS.name) or []
        ]
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {partition.partition: offset for partition, offset in offsets.items()}


async def test_a_dry_run_answers_mapping_counts_and_preview_and_publishes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    before = await end_offsets(settings.require_broker())
    data = (FIXTURES / "eventyay_leads.csv").read_bytes()
    for form in (True, False):
        response = await upload(client, data, "dry-show", form=form, dry_run="true")
        assert response.status_code == 200
        report = response.json()
        assert report["dry_run"] is True
        assert (report["rows"], report["accepted"], report["rejected"]) == (4, 3, 1)
        assert report["rejected_rows"][0]["line"] == 5
        mapping = {column["column"]: column["field"] for column in report["mapping"]}
        assert mapping["Scanned Date"] == "scan_date"
        assert mapping["Attendee Name"] == "full_name"
        assert mapping["Tags"] == "properties.tags"
        assert [row["line"] for row in report["preview"]] == [2, 3, 4]
        first = report["preview"][0]["record"]
        assert first["type"] == "leadflow.interaction.tradeshow.badge_scan"
        assert first["subject"] == ANNA
        assert first["data"]["time"] == "2024-10-24T09:14:03Z"
        assert first["data"]["contact"]["last_name"] == "Schmidt"
        assert first["data"]["campaign"] == "dry-show"
    assert await end_offsets(settings.require_broker()) == before


async def test_a_dry_run_previews_five_rows_of_a_large_file(client: httpx.AsyncClient) -> None:
    rows = "".join(f"p{n}@example.com;{n % 28 + 1}.10.2024 09:00\n" for n in range(40))
    response = await upload(
        client, f"E-Mail;Scan Date\n{rows}".encode(), "dry-big", form=True, dry_run="1"
    )
    report = response.json()
    assert (report["rows"], report["accepted"]) == (40, 40)
    assert [row["line"] for row in report["preview"]] == [2, 3, 4, 5, 6]


async def test_map_names_the_columns_an_export_calls_otherwise(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    campaign = f"mapped-{uuid.uuid4().hex[:8]}"
    data = (
        "Attendee Mail\tLead captured\tWhere\tRating\tE-mail\n"
        "ada@example.com\t2024-10-24 09:14\tHall B\t5\tada.private@example.com\n"
    ).encode("utf-16")
    mapping = "Attendee Mail:email,Lead captured:scanned_at,Where:properties.hall,Rating:ignore"
    response = await upload(client, data, campaign, form=True, map=mapping)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["mapping"] == [
        {"column": "Attendee Mail", "field": "email"},
        {"column": "Lead captured", "field": "scanned_at"},
        {"column": "Where", "field": "properties.hall"},
        {"column": "Rating", "field": "ignore"},
        {"column": "E-mail", "field": "properties.e_mail"},
    ]
    assert report["accepted"] == 1

    def arrived(records: list[ReadRecord]) -> bool:
        return campaign in by_campaign(records)

    [record] = by_campaign(await read_until(settings.require_broker(), INTERACTIONS.name, arrived))[
        campaign
    ]
    data_ = record.value["data"]
    assert data_["contact"] == {"email": "ada@example.com"}
    assert data_["time"] == "2024-10-24T09:14:00Z"
    assert data_["properties"] == {"hall": "Hall B", "e_mail": "ada.private@example.com"}


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ("Attendee Mail:e-mail", "'e-mail' (for column 'Attendee Mail') is not a field"),
        ("Attendee Mail", "is not Column:field"),
        ("Attendee Mail:email,Nope:notes", "the file has no column 'Nope'"),
        ("A:email,B:email", "given to two columns"),
    ],
)
async def test_a_bad_map_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, mapping: str, says: str
) -> None:
    response = await upload(
        client, b"Attendee Mail,When\na@example.com,2024-10-24\n", "show", form=False, map=mapping
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "query.map"
    assert says in error["message"]


async def test_bom_delimiters_and_guards_of_spreadsheets(client: httpx.AsyncClient) -> None:
    lines = [
        ["E-Mail", "Notes", "Telefon", "Firma", "Land", "Scanned at"],
        ["j@example.com", '="0049 30 1234567"', "'+49 89 1", "", "Deutschland", "24.10.2024 09:14"],
    ]
    for delimiter, encoding in ((";", "utf-8-sig"), ("\t", "utf-16"), (",", "cp1252")):
        lines[1][3] = f'"Weiß{delimiter} GmbH"'  # quoted: it holds the delimiter
        text = "".join(delimiter.join(line) + "\r\n" for line in lines)
        response = await upload(client, text.encode(encoding), "guards", form=True, dry_run="true")
        report = response.json()
        assert report["accepted"] == 1, (delimiter, encoding, report)
        data = report["preview"][0]["record"]["data"]
        assert data["contact"] == {
            "email": "j@example.com",
            "phone": "+49 89 1",
            "company": f"Weiß{delimiter} GmbH",
            "country": "DE",
        }, (delimiter, encoding)
        assert data["properties"] == {"notes": "0049 30 1234567"}
        assert data["time"] == "2024-10-24T09:14:00Z"


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_rejected_rows_keep_their_line_numbers(client: httpx.AsyncClient) -> None:
    rows = [
        codecs.BOM_UTF8.decode() + "Email,Scan Date,Notes,Interaction",
        'grace@example.com,2026-11-20T10:00:00Z,"met at the bar,\nasked about\npricing",',
        "",
        "not-an-email,2026-11-20T12:00:00Z,,",
        'linus@example.com,2026-11-20T12:00:00Z,"two\r\nlines",karaoke',
        ",,,",
        "ada@example.com,yesterday,,demo",
        "alan@example.com,2026-11-20 11:00,,Booth Visit",
    ]
    body = ("\r\n".join(rows) + "\r\n").encode()
    for size in (7, 64, len(body)):  # records across chunk boundaries keep their lines
        response = await client.post(
            ROUTE,
            params={"campaign": "lines", "dry_run": "true"},
            content=chunks_of(body, size),
            headers=CSV,
        )
        report = response.json()
        assert (report["rows"], report["accepted"], report["rejected"]) == (5, 2, 3)
        rejected = {row["line"]: row["errors"][0]["field"] for row in report["rejected_rows"]}
        assert rejected == {6: "contact.email", 7: "type", 10: "time"}
        assert [row["line"] for row in report["preview"]] == [2, 11]


async def test_a_long_export_without_an_interaction_column_is_of_badge_scans(
    client: httpx.AsyncClient,
) -> None:
    body = b"Email,Checked in\n" + b"".join(
        f"p{n}@example.com,2024-10-24 09:{n % 60:02d}\n".encode() for n in range(1_500)
    )
    response = await upload(client, body, "long", form=True, dry_run="true")
    report = response.json()
    assert (report["rows"], report["accepted"]) == (1_500, 1_500)
    assert {row["record"]["data"]["type"] for row in report["preview"]} == {"badge_scan"}


BADGE_HEADER = (
    "email,first_name,last_name,company,job_title,phone,country,scanned_at,interaction,notes"
)


async def test_tradeshow_csv_accepts_good_rows_and_names_the_lines_of_bad_ones(
    client: httpx.AsyncClient,
) -> None:
    rows = [
        BADGE_HEADER,
        "grace@example.com,Grace,Hopper,Navy,Rear Admiral,,US,2026-11-20T10:00:00Z,badge_scan,",
        'alan@example.com,Alan,Turing,NPL,,,GB,2026-11-20 11:00:00,demo,"asked about\npricing"',
        "not-an-email,X,Y,Z,,,DE,2026-11-20T12:00:00Z,badge_scan,",
        "linus@example.com,Linus,T,,,,FI,2026-11-20T12:00:00Z,karaoke,",
    ]
    body = ("\n".join(rows) + "\n").encode()
    response = await upload(client, body, "websummit-2026", form=False)
    assert response.status_code == 200
    report = response.json()
    assert (report["rows"], report["accepted"], report["rejected"]) == (4, 2, 2)
    rejected = {row["line"]: row["errors"][0]["field"] for row in report["rejected_rows"]}
    assert rejected == {5: "contact.email", 6: "type"}


def form_body(parts: list[tuple[str, bytes]], boundary: str = "scanner-export") -> bytes:
    body = b""
    for name, content in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{name}.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


async def test_tradeshow_import_refuses_bad_requests(client: httpx.AsyncClient) -> None:
    async def post(content: bytes, content_type: str, **headers: str) -> httpx.Response:
        headers = {**ALL, "Content-Type": content_type, **headers}
        return await client.post(
            ROUTE, params={"campaign": "show"}, content=content, headers=headers
        )

    no_email = await post(b"name,city\nx,y\n", "text/csv")
    assert no_email.status_code == 422
    assert no_email.json()["errors"][0]["field"] == "header"
    assert "email" in no_email.json()["errors"][0]["message"]
    assert (await post(b"", "text/csv")).status_code == 422
    bad_campaign = await client.post(
        ROUTE, params={"campaign": "Bad Campaign"}, content=b"email\n", headers=CSV
    )
    assert bad_campaign.status_code == 422
    assert bad_campaign.json()["errors"][0]["field"] == "query.campaign"
    assert (await post(b"email\n", "text/csv", **WEB_ONLY)).status_code == 403
    assert (await post(b"{}", "application/json")).status_code == 415
    assert (await post(b"email\n", "text/plain")).status_code == 415

    form = "multipart/form-data; boundary=scanner-export"
    no_file = await post(form_body([("scans", b"email\n")]), form)
    assert no_file.status_code == 422
    assert no_file.json()["errors"] == [
        {"field": "file", "message": "is required: send the file as the form field named file"}
    ]
    two_files = await post(form_body([("file", b"email\n"), ("file", b"email\n")]), form)
    assert two_files.status_code == 422
    assert two_files.json()["errors"][0]["field"] == "file"
    assert (await post(b"email\n", "multipart/form-data")).status_code == 400
    assert (await post(b"--other\r\n\r\nemail\n", form)).status_code == 400
    assert (await post(form_body([("file", b"email\n")])[:-20], form)).status_code == 400
    one = await post(
        form_body([("campaign", b"ignored"), ("file", b"email\nada@example.com\n")]), form
    )
    assert one.json()["accepted"] == 1
    too_big = await post(b"email\n", "text/csv", **{"Content-Length": str(64 * 1024 * 1024 + 1)})
    assert too_big.status_code == 413


async def test_a_50000_row_badge_file_is_streamed_and_reports_progress(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def badge_file() -> AsyncIterator[bytes]:
        yield (BADGE_HEADER + "\n").encode()
        for start in range(0, 50_000, 5_000):
            yield "".join(
                f"p{n}@example.com,P,{n},Acme,CTO,,DE,2026-11-20T10:00:00Z,badge_scan,\n"
                for n in range(start, start + 5_000)
            ).encode()

    caplog.set_level("INFO", logger="services.ingest.handlers")
    response = await client.post(
        ROUTE, params={"campaign": "bigshow"}, content=badge_file(), headers=CSV, timeout=120
    )
    assert response.status_code == 200
    report = response.json()
    assert (report["rows"], report["accepted"], report["rejected"]) == (50_000, 50_000, 0)
    progress = [r for r in caplog.records if r.getMessage() == "tradeshow import progress"]
    assert [r.__dict__["rows"] for r in progress] == list(range(10_000, 50_001, 10_000))


async def test_a_form_upload_is_recorded_while_it_still_arrives(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    boundary = "streamed-form"
    progress_before_the_end: list[int] = []

    def progress() -> list[int]:
        return [
            r.__dict__["rows"]
            for r in caplog.records
            if r.getMessage() == "tradeshow import progress"
        ]

    async def form() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nE-mail,Checked in\r\n"
        ).encode()
        for start in range(0, 30_000, 5_000):
            yield "".join(
                f"s{n}@example.com,2026-11-20 10:00\r\n" for n in range(start, start + 5_000)
            ).encode()
        progress_before_the_end.extend(progress())
        yield f"\r\n--{boundary}--\r\n".encode()

    caplog.set_level("INFO", logger="services.ingest.handlers")
    response = await client.post(
        ROUTE,
        params={"campaign": "bigform"},
        content=form(),
        headers={**ALL, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["rows"], response.json()["accepted"]) == (30_000, 30_000)
    assert progress_before_the_end[:2] == [10_000, 20_000]  # not buffered until the end
