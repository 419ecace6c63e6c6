"""Router's HTTP routes (entrypoint), by resource: the roster and queues, rep actions on
leads, the hand-off stream, the reports; the dashboard page beside them."""

from fastapi import APIRouter

from services.router.api import leads, one_click, reports, reps, stream, subscriptions
from services.router.api.dashboard import assets, pages
from services.router.api.errors import install_domain_errors
from shared.problems import problem_responses

# Every route needs the database (a rep's token too): while it is down, they answer 503.
router = APIRouter(prefix="/v1", tags=["router"], responses=problem_responses(503))
for resource in (
    reps.routes,
    leads.routes,
    stream.routes,
    reps.roster,
    reports.routes,
    subscriptions.routes,
    one_click.routes,
):
    router.include_router(resource)

__all__ = ["assets", "install_domain_errors", "pages", "router"]
