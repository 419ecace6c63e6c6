"""The shape of a sources file: each declared webhook sender, how it signs, how it maps.

Shape only: what needs several keys at once (a channel and its types, an identity for
every item) is checked in `checks.py`, so each problem is reported with its key.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import IncompleteExpressionError, LexerError, ParseError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.events import Contact

# Names the route serves with code of its own; a declared source cannot take them.
BUILT_IN_SOURCES = ("standard", "mautic")
BODY, TIMESTAMP = "body", "timestamp"
CONTACT_FIELDS = tuple(Contact.model_fields)

SourceName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]*$", min_length=1, max_length=64)
]
# An HTTP field name (RFC 9110 token).
HeaderName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~\-]+$", max_length=100)
]
PropertyName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)
]


def _compiles(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except ParseError as error:
        if isinstance(error, IncompleteExpressionError):
            problem = "it ends too early"
        elif isinstance(error, LexerError):
            problem = f"{error.lexer_value!r} is not allowed at position {error.lexer_position}"
        else:
            problem = f"{error.token_value!r} is not expected at position {error.lex_position}"
        raise ValueError(f"not a JMESPath expression: {problem}") from None
    return expression


JmesPath = Annotated[str, StringConstraints(min_length=1), AfterValidator(_compiles)]


def _known_contact_field(name: str) -> str:
    if name not in CONTACT_FIELDS:
        raise ValueError(f"not a contact field (known: {', '.join(CONTACT_FIELDS)})")
    return name


ContactField = Annotated[str, AfterValidator(_known_contact_field)]


class Declaration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignedTimestamp(Declaration):
    """A header with the Unix time of sending, signed with the body, trusted within a window."""

    header: HeaderName
    window_seconds: int = Field(default=300, ge=1, le=86_400)


class HmacSignature(Declaration):
    """HMAC-SHA256 with the source's secret, hex or base64, in a header after `prefix`."""

    scheme: Literal["hmac-sha256"]
    header: HeaderName
    encoding: Literal["hex", "base64"]
    prefix: str = Field(default="", max_length=32, description="e.g. sha256=")
    timestamp: SignedTimestamp | None = None
    signed: str | None = Field(
        default=None,
        description="what is signed: {body}, or e.g. {timestamp}.{body} (the default with "
        "a timestamp) or v0:{timestamp}:{body}",
    )

    @model_validator(mode="after")
    def _placeholders(self) -> HmacSignature:
        names = [name for _, name, _, _ in string.Formatter().parse(self.signed_template) if name]
        if names.count(BODY) != 1 or set(names) - {BODY, TIMESTAMP}:
            raise ValueError("signed must hold {body} once, and no placeholder but {timestamp}")
        if (TIMESTAMP in names) != (self.timestamp is not None):
            raise ValueError("{timestamp} in signed goes with a timestamp header, and back")
        return self

    @property
    def signed_template(self) -> str:
        if self.signed is not None:
            return self.signed
        return "{timestamp}.{body}" if self.timestamp else "{body}"


class StandardSignature(Declaration):
    """Standard Webhooks: webhook-id, webhook-timestamp (5 minutes), webhook-signature."""

    scheme: Literal["standard-webhooks"]


Signature = Annotated[HmacSignature | StandardSignature, Field(discriminator="scheme")]


class FieldSpec(Declaration):
    """Where one interaction field comes from: a JMESPath `path` in the item, or a `value`.

    A bare string is a path. A time that the item gives as a number needs `epoch`.
    """

    path: JmesPath | None = None
    value: str | int | float | bool | None = None
    epoch: Literal["seconds", "milliseconds"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        constant = "value" in self.model_fields_set
        if constant == (self.path is not None):
            raise ValueError("give either path (a JMESPath expression) or value (a constant)")
        if constant and self.value is None:
            raise ValueError("value must not be null; leave the field out instead")
        if self.epoch is not None and constant:
            raise ValueError("epoch goes with a path")
        return self


class InteractionMapping(Declaration):
    """Each interaction field, read from one item: the shape of `POST /v1/events`."""

    id: FieldSpec | None = Field(
        default=None, description="the sender's id of the item; default: a digest of the item"
    )
    channel: FieldSpec
    type: FieldSpec
    time: FieldSpec | None = None
    campaign: FieldSpec | None = None
    contact: dict[ContactField, FieldSpec]
    properties: dict[PropertyName, FieldSpec] = {}


class Source(Declaration):
    """One sender: its name in `/v1/webhooks/{name}`, its signature, its items and mapping."""

    name: SourceName
    description: str = ""
    signature: Signature
    items: JmesPath = Field(
        default="@", description="where the items are; an object found there is one item"
    )
    interaction: InteractionMapping

    @field_validator("signature", mode="before")
    @classmethod
    def _signed(cls, signature: Any) -> Any:
        scheme = signature.get("scheme") if isinstance(signature, dict) else signature
        if scheme in (None, False, "none", "unsigned"):
            raise ValueError(
                "every source is signed: scheme hmac-sha256 or standard-webhooks "
                "(no signature is not allowed)"
            )
        return signature


class SourcesFile(Declaration):
    sources: list[Source] = Field(min_length=1)
