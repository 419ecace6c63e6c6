"""Webhook senders declared in a YAML file (`LEADFLOW_SOURCES`) instead of code."""

from services.ingest.sources.items import Delivery, ItemProblem, MappedItem
from services.ingest.sources.loader import SourcesError, load_sources, parse_sources
from services.ingest.sources.mapping import DeclaredMapping
from services.ingest.sources.model import HmacSignature, Source, StandardSignature

__all__ = [
    "DeclaredMapping",
    "Delivery",
    "HmacSignature",
    "ItemProblem",
    "MappedItem",
    "Source",
    "SourcesError",
    "StandardSignature",
    "load_sources",
    "parse_sources",
]
