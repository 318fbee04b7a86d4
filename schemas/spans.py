"""The span row: the lake's central contract.

Typed, hot columns hold what queries touch (ids, times, GenAI usage and cost, attribution).
Everything else is kept losslessly in string maps with a one-letter type code per entry (see
``schemas.attributes``). An attribute that was copied into a typed column *with its exact value
and type* is removed from ``attributes``; ``source_keys`` records which key it came from, so the
original can be rebuilt (the ``spans`` view does this in ``all_attributes``). Attributes whose
value was transformed on the way in (an exclusive input count made inclusive, a token count sent
as a string, a roll-up on an agent span) stay in ``attributes`` untouched.

Column order is stable; add columns only at the end of a group and bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

#: Decimal type of every USD amount we compute: exact sums, 1e-12 USD resolution.
USD = pa.decimal128(18, 12)
TIME = pa.timestamp("ns", tz="UTC")
ATTR_MAP = pa.map_(pa.string(), pa.string())

EVENT = pa.struct(
    [
        pa.field("time", TIME),
        pa.field("name", pa.string()),
        pa.field("attributes", ATTR_MAP),
        pa.field("attribute_types", pa.string()),
        pa.field("dropped_attributes_count", pa.uint32()),
    ]
)

LINK = pa.struct(
    [
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("trace_state", pa.string()),
        pa.field("flags", pa.uint32()),
        pa.field("attributes", ATTR_MAP),
        pa.field("attribute_types", pa.string()),
        pa.field("dropped_attributes_count", pa.uint32()),
    ]
)

# (name, type, doc). The docs feed README's column table.
_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("schema_version", pa.int8(), "Row format version."),
    # --- identity and timing (OTLP span fields)
    ("trace_id", pa.string(), "32 lowercase hex digits."),
    ("span_id", pa.string(), "16 lowercase hex digits."),
    ("parent_span_id", pa.string(), "16 lowercase hex digits; null on a root span."),
    ("trace_state", pa.string(), "W3C tracestate; null when empty."),
    ("flags", pa.uint32(), "Span flags (W3C trace flags + OTLP bits); null when 0."),
    ("name", pa.string(), "Span name."),
    ("kind", pa.int8(), "OTLP SpanKind number (0 unspecified .. 5 consumer)."),
    ("start_time", TIME, "Start, UTC, nanoseconds."),
    (
        "duration_ns",
        pa.int64(),
        "end - start in nanoseconds (end_time in the view); 0 when the end was before the start"
        " or 0 (the end as sent: attributes['tasklake.end_time_unix_nano']).",
    ),
    ("status_code", pa.int8(), "0 unset, 1 ok, 2 error."),
    ("status_message", pa.string(), "Status description; null when empty."),
    ("service_name", pa.string(), "Resource service.name."),
    # --- GenAI, normalized across conventions (source key in source_keys)
    ("operation", pa.string(), "chat, embeddings, execute_tool, invoke_agent, retrieval, ..."),
    ("is_model_call", pa.bool_(), "Leaf model call: the only spans whose tokens are billed."),
    ("provider", pa.string(), "OTel provider name (aliases folded: az.ai.openai -> ...)."),
    ("request_model", pa.string(), "Model asked for."),
    ("response_model", pa.string(), "Model that answered; the price key (else request model)."),
    ("input_tokens", pa.int64(), "Input tokens including cached ones (model calls only)."),
    ("output_tokens", pa.int64(), "Output tokens including reasoning (model calls only)."),
    ("cache_read_tokens", pa.int64(), "Subset of input read from cache."),
    ("cache_write_tokens", pa.int64(), "Subset of input written to cache."),
    ("reasoning_tokens", pa.int64(), "Subset of output spent reasoning."),
    ("total_tokens", pa.int64(), "Reported total, else input + output."),
    (
        "usage_basis",
        pa.string(),
        "'inclusive', 'exclusive:<why>' when input excluded cache, 'invalid:<keys>' when a"
        " usage attribute was not a count (the call is then not priced from tokens).",
    ),
    ("cost_usd", USD, "Our price of this call in USD; null when unpriced or not a model call."),
    ("cost_source", pa.string(), "override | genai-prices | reported | unpriced."),
    (
        "price_ref",
        pa.string(),
        "Which price: 'genai-prices@<ver>:<provider>/<model>', ...; 'overflow:<price>' when the"
        " cost would not fit cost_usd.",
    ),
    ("reported_cost_usd", pa.float64(), "Cost the emitter reported, kept beside ours."),
    # --- attribution: the span's own values (resource fallbacks below)
    ("correlation_id", pa.string(), "First configured correlation key on the span."),
    ("task_id", pa.string(), "Business task (ticket, invoice) the span works on."),
    ("workflow", pa.string(), "Workflow named on the span."),
    ("workflow_version", pa.string(), "Workflow version named on the span."),
    ("team", pa.string(), "Team named on the span."),
    ("role", pa.string(), "Role named on the span (workflow.role, gen_ai.agent.name)."),
    ("agent_name", pa.string(), "Agent name."),
    ("agent_id", pa.string(), "Agent id."),
    ("tool_name", pa.string(), "Tool called."),
    ("tool_call_id", pa.string(), "Tool call id."),
    ("tool_type", pa.string(), "Tool type (function, extension, datastore)."),
    ("data_source_id", pa.string(), "Retrieval data source."),
    ("conversation_id", pa.string(), "Conversation / session id."),
    ("user_id", pa.string(), "End user id."),
    ("error_type", pa.string(), "error.type, else the exception event's type on ERROR."),
    ("environment", pa.string(), "Deployment environment."),
    ("resource_correlation_id", pa.string(), "Correlation key found on the resource."),
    ("resource_workflow", pa.string(), "Resource stand-in for workflow (service.name)."),
    ("resource_team", pa.string(), "Resource stand-in for team (service.namespace)."),
    ("resource_version", pa.string(), "Resource stand-in for version (service.version)."),
    ("source_keys", ATTR_MAP, "Typed column -> attribute key it was read from."),
    # --- the lossless rest
    ("attributes", ATTR_MAP, "Every span attribute not moved to a typed column, as text."),
    ("attribute_types", pa.string(), "One type code per attributes entry; null if all 's'."),
    (
        "dropped_attributes_count",
        pa.uint32(),
        "As sent (plus duplicate keys we dropped); every dropped count saturates at 4294967295.",
    ),
    (
        "events",
        pa.list_(EVENT),
        "Span events, attributes as text maps; a time past 2262-01-01 is null (as sent:"
        " the event's attributes['tasklake.time_unix_nano']).",
    ),
    ("dropped_events_count", pa.uint32(), "As sent."),
    ("links", pa.list_(LINK), "Span links."),
    ("dropped_links_count", pa.uint32(), "As sent."),
    ("resource_attributes", ATTR_MAP, "Every resource attribute, as text."),
    ("resource_attribute_types", pa.string(), "Type codes for resource_attributes."),
    ("resource_dropped_attributes_count", pa.uint32(), "As sent."),
    ("resource_schema_url", pa.string(), "ResourceSpans.schema_url."),
    ("scope_name", pa.string(), "Instrumentation scope name."),
    ("scope_version", pa.string(), "Instrumentation scope version."),
    ("scope_attributes", ATTR_MAP, "Instrumentation scope attributes, as text."),
    ("scope_attribute_types", pa.string(), "Type codes for scope_attributes."),
    ("scope_dropped_attributes_count", pa.uint32(), "As sent."),
    ("scope_schema_url", pa.string(), "ScopeSpans.schema_url."),
    ("ingested_at", pa.timestamp("ms", tz="UTC"), "When the receiver acknowledged the span."),
)

SPAN_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in _COLUMNS])
SPAN_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS)
COLUMN_DOCS: dict[str, str] = {name: doc for name, _, doc in _COLUMNS}

#: Typed columns that may be filled from a span attribute (keys of ``source_keys``).
ATTRIBUTE_FIELDS: tuple[str, ...] = (
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
    "reported_cost_usd",
    "correlation_id",
    "task_id",
    "workflow",
    "workflow_version",
    "team",
    "role",
    "agent_name",
    "agent_id",
    "tool_name",
    "tool_call_id",
    "tool_type",
    "data_source_id",
    "conversation_id",
    "user_id",
    "error_type",
    "environment",
)

#: Sort order of compacted files: traces together (ids compress, trace lookups prune row
#: groups), traces ordered by time so timestamps delta-encode.
SORT_KEYS: tuple[str, ...] = ("trace_id", "start_time")


def columns_doc() -> str:
    """Markdown table of the span columns (README embeds it; a test keeps them equal)."""
    rows = ["| column | type | what |", "|---|---|---|"]
    for name, typ, doc in _COLUMNS:
        rows.append(f"| `{name}` | `{typ}` | {doc} |")
    return "\n".join(rows)
