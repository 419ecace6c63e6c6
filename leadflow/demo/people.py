"""The demo's synthetic people: who they are, and what each kind of person does."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SITE = "https://www.leadflow-demo.test"
PAGES = tuple(SITE + page for page in ("/", "/product", "/customers", "/blog/scoring", "/about"))
PRICING = (SITE + "/pricing", SITE + "/pricing/enterprise")
SHOW = "websummit-2026"
BADGE_COLUMNS = (
    "email first_name last_name company job_title phone country scanned_at interaction notes"
)
# Small capacities, so hand-offs queue up until a rep rejects or closes a lead.
REPS = """
Maya Ortega     | enterprise | 3 | America/New_York
Jonas Albrecht  | enterprise | 2 | Europe/Zurich
Ines Hartmann   | dach       | 3 | Europe/Berlin
Lukas Brenner   | dach       | 2 | Europe/Vienna
Chloe Marchand  | emea       | 4 | Europe/Paris
Oliver Pembrook | emea       | 2 | Europe/London
Carla Mendes    | americas   | 3 | America/Chicago
Ethan Calloway  | americas   | 2 | America/Los_Angeles"""
# Every territory of the definitions, big and micro companies, target industries and not.
COMPANIES = """
Northwind Analytics     | northwind    | US | 1800 | software
Globex Maschinenbau     | globex       | DE | 5200 | manufacturing
Bergwerk Logistik       | bergwerk     | DE | 340  | logistics
Alpenblick Versicherung | alpenblick   | AT | 650  | financial services
Zuger Praezision        | zuger        | CH | 120  | manufacturing
Thames Ledger           | thames       | GB | 220  | financial services
Canal Studio            | canalstudio  | NL | 45   | marketing
Lumiere Retail          | lumiere      | FR | 900  | retail
Fjordhelse              | fjord        | NO | 8    | healthcare
Prairie Cloud           | prairiecloud | US | 140  | saas
Pampas Alimentos        | pampas       | BR | 700  | food
Maple Byte              | maplebyte    | CA | 30   | software"""
FIRST_NAMES = "Ada Ben Clara Diego Elif Finn Greta Hugo Ines Jamal Kira Leon Mila Noah Olga Paul"
LAST_NAMES = "Adler Baker Costa Dahl Eriksen Fischer Garcia Horvat Ito Jansen Laurent Novak"
# Job titles and how common they are: executives and managers fit, students and interns do not.
JOB_TITLES = """
Chief Revenue Officer | 3,  VP Marketing | 4,  Head of Sales Operations | 5,  Director of IT | 4,
Marketing Manager | 10,  Team Lead Demand Generation | 6,  Sales Operations Analyst | 8,
Software Engineer | 6,  Working Student | 3,  Marketing Intern | 2"""
PERSONAS = {"browser": 30, "reader": 25, "evaluator": 20, "demo": 10, "show_visitor": 15}
# What each kind of person does, in order: "channel.type campaign times", times being a range
# (2-5) or the chance it happens once (.5); a|b picks one; web.pricing views a pricing page.
JOURNEYS = {
    "browser": "web.page_view - 1-4, social.follow linkedin-ads .5, email.open newsletter .3, "
    "email.unsubscribe newsletter .1",
    "reader": "email.open newsletter 1-3, email.click newsletter 0-3, web.content_download "
    "newsletter 1, social.share|comment linkedin-ads .4, web.pricing - .3",
    "evaluator": "web.page_view - 2-5, web.pricing - 1-2, web.content_download q4-webinar 1, "
    "web.form_submit q4-webinar 1, email.click newsletter 1, email.reply newsletter .6, "
    "social.message linkedin-ads .5",
    "demo": "web.page_view - 1-3, web.pricing - 1, web.demo_request demo-request 1",
    "show_visitor": f"tradeshow.badge_scan {SHOW} 1, tradeshow.booth_visit|demo|meeting {SHOW} 1, "
    f"email.click {SHOW} .6, web.pricing - .4",
}
# Before a form tells who they are, a visitor is known by a cookie only.
ANONYMOUS_START = "web.page_view - 2-4, web.pricing - .7, web.form_submit linkedin-ads"
# What an interaction of a type carries: (property, choices).
PROPERTIES = {
    "page_view": ("url", PAGES),
    "pricing": ("url", PRICING),
    "click": ("url", PAGES + PRICING),
    "content_download": ("asset", ("funnel-benchmark-2026.pdf", "sla-playbook.pdf")),
    "form_submit": ("form", ("contact-us", "webinar-registration")),
    "demo_request": ("form", ("book-a-demo",)),
    "open": ("subject", ("Leads sales trusts", "Your funnel, agreed")),
    "reply": ("subject", ("Re: Leads sales trusts",)),
    "social": ("network", ("linkedin", "linkedin", "x", "xing", "youtube")),
    "tradeshow": ("notes", ("asked about CRM sync", "wants pricing", "")),
}


def table_rows(text: str) -> list[list[str]]:
    """Rows of a `a | b | c` table; rows end at a line end or a comma."""
    rows = [row for line in text.strip().splitlines() for row in line.split(",") if row.strip()]
    return [[cell.strip() for cell in row.split("|")] for row in rows]


def rep_email(name: str) -> str:
    """A demo rep's address, from their name: Maya Ortega is maya.ortega@example.com."""
    return ".".join(name.lower().split()) + "@example.com"


@dataclass(frozen=True)
class Person:
    """One synthetic person: what a form tells about them, and how they behave."""

    known: dict[str, Any]  # contact fields, as an interaction carries them
    persona: str
    anonymous_id: str | None = None

    def contact(self, who: str = "known") -> dict[str, Any]:
        """An interaction's contact: the cookie only, everything a form tells, or both."""
        if who == "cookie":
            return {"anonymous_id": self.anonymous_id}
        return self.known | ({"anonymous_id": self.anonymous_id} if who == "both" else {})


def synthetic_people(seed: int, run_tag: str, count: int = 200) -> list[Person]:
    """`count` made-up people; the same seed gives the same people (tagged with the run)."""
    rng, people, taken = random.Random(seed), [], set()
    titles = table_rows(JOB_TITLES)
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES.split()), rng.choice(LAST_NAMES.split())
        company, domain, country, size, industry = rng.choice(table_rows(COMPANIES))
        local = f"{first}.{last}".lower() + (str(index) if (first, last, domain) in taken else "")
        taken.add((first, last, domain))
        title = rng.choices([t for t, _ in titles], weights=[int(w) for _, w in titles])[0]
        known = {"email": f"{local}+{run_tag}@{domain}-demo.test", "first_name": first}
        known |= {"last_name": last, "company": company, "job_title": title, "country": country}
        persona = rng.choices(list(PERSONAS), weights=list(PERSONAS.values()))[0]
        cookie = persona in ("browser", "evaluator", "demo") and rng.random() < 0.2
        anonymous_id = f"anon-{run_tag}-{index}" if cookie else None
        profile = {"industry": industry, "company_size": int(size)}
        people.append(Person(known | profile, persona, anonymous_id))
    return people


def interactions_of(person: Person, rng: random.Random, now: datetime) -> tuple[list[Any], ...]:
    """A person's interactions over the last days (batch-route shape) and badge-scan rows."""
    moment, events, scans = now - timedelta(days=rng.uniform(0.3, 4)), [], []
    who, steps = "known", JOURNEYS[person.persona]
    if person.anonymous_id:  # half of the anonymous browsers never fill in a form
        chance = 0.5 if person.persona == "browser" else 1
        who, steps = "cookie", f"{ANONYMOUS_START} {chance}, {steps}"
    for step in steps.split(", "):
        what, campaign, times = step.split()
        low, _, high = times.partition("-")
        repeat = rng.randint(int(low), int(high)) if high else int(rng.random() < float(low))
        for _ in range(repeat):
            channel, kind = what.split(".")
            kind = rng.choice(kind.split("|"))
            name, choices = PROPERTIES.get(channel if channel in PROPERTIES else kind, ("", ()))
            properties = {name: rng.choice(choices)} if name else {}
            kind = kind.replace("pricing", "page_view")
            moment = min(moment + timedelta(hours=rng.uniform(0.1, 10)), now - timedelta(minutes=1))
            if channel == "tradeshow":  # scanned at the booth yesterday, sent as a CSV file
                scanned_at = (now - timedelta(hours=rng.uniform(20, 28))).isoformat()
                scans.append(
                    person.contact() | properties | {"scanned_at": scanned_at, "interaction": kind}
                )
            elif who != "cookie" or channel == "web":
                who = "both" if who == "cookie" and kind == "form_submit" else who
                event: dict[str, Any] = {"channel": channel, "type": kind, "properties": properties}
                event |= {"time": moment.isoformat(), "campaign": campaign.strip("-") or None}
                events.append(event | {"contact": person.contact(who)})
                who = "known" if who == "both" else who
    return events, scans
