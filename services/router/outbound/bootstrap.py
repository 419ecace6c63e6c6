"""The dispatcher of outbound messages, as the settings configure it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.domain.delivery import RetryPolicy
from services.router.domain.links import link_secret
from services.router.outbound.dispatcher import Dispatcher, NoticeWriter
from services.router.outbound.senders import HttpPoster, Mailer
from shared.settings import Settings


def new_dispatcher(settings: Settings, engine: AsyncEngine) -> Dispatcher:
    timeout = settings.delivery_timeout_seconds
    return Dispatcher(
        engine,
        HttpPoster(timeout),
        Mailer(settings.smtp_url, settings.mail_from, timeout) if settings.smtp_url else None,
        NoticeWriter(
            settings.router_public_url(), link_secret(settings.link_secret, settings.admin_key)
        ),
        RetryPolicy(
            first_retry=timedelta(seconds=settings.delivery_first_retry_seconds),
            give_up_after=timedelta(hours=settings.delivery_retry_hours),
        ),
        pause_after=timedelta(hours=settings.subscription_pause_after_hours),
    )
