"""The lead definitions: the shared, versioned language of marketing and sales."""

from shared.definitions.loader import DefinitionsError, LoadedDefinitions, load_definitions
from shared.definitions.model import LeadDefinitions

__all__ = ["DefinitionsError", "LeadDefinitions", "LoadedDefinitions", "load_definitions"]
