"""Which span attribute feeds which typed column, across GenAI emitter conventions.

Declared once, read by ``ingest.convert.normalize``. Every table is ordered: for a column, the
first key *in table order* that a span carries wins, whatever the order of the span's attributes.
Sources: reference/genai-attributes.md (OTel GenAI semconv 1.26-1.41 and the genai repository,
OpenInference, OpenLLMetry, OpenLIT, Langfuse).

Attribution columns (correlation, task, workflow, version, team, role) are not here: their keys
are configurable (``Settings.*_keys``); ``attribution_candidates`` expands each configured key
into the free-form spellings that count as the same key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# ----------------------------------------------------------------------------- operation

#: ``gen_ai.operation.name`` values are taken as sent; the other sources are mapped. A value
#: missing from a mapping is kept lower-cased; ``None`` means "no answer here, keep looking".
OPERATION_SOURCES: tuple[tuple[str, Mapping[str, str | None] | None], ...] = (
    ("gen_ai.operation.name", None),
    (
        "openinference.span.kind",
        {
            "llm": "chat",
            "embedding": "embeddings",
            "tool": "execute_tool",
            "agent": "invoke_agent",
            "retriever": "retrieval",
            "unknown": None,
        },
    ),
    (
        "llm.request.type",
        {
            "chat": "chat",
            "completion": "text_completion",
            "embedding": "embeddings",
            "rerank": "rerank",
            "unknown": None,
        },
    ),
    (
        "traceloop.span.kind",
        {
            "workflow": "invoke_workflow",
            "agent": "invoke_agent",
            "tool": "execute_tool",
            "task": "task",
            "unknown": None,
        },
    ),
    (
        "langfuse.observation.type",
        {
            "generation": "chat",
            "embedding": "embeddings",
            "agent": "invoke_agent",
            "tool": "execute_tool",
            "retriever": "retrieval",
        },
    ),
)

#: Leaf model calls: the only spans whose tokens are counted and priced.
MODEL_CALL_OPERATIONS: frozenset[str] = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings"}
)

# ----------------------------------------------------------------------------- provider

PROVIDER_KEYS: tuple[str, ...] = (
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
)

#: Old or vendor spellings -> OTel ``gen_ai.provider.name`` values (after lower-casing).
PROVIDER_ALIASES: Mapping[str, str] = {
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "azure_openai": "azure.ai.openai",
    "azure-ai-inference": "azure.ai.inference",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
}

# ----------------------------------------------------------------------------- models

REQUEST_MODEL_KEYS: tuple[str, ...] = (
    "gen_ai.request.model",
    "llm.request.model_name",
    "llm.model_name",
    "embedding.model_name",
)

#: The price key. When none is present the request model stands in.
RESPONSE_MODEL_KEYS: tuple[str, ...] = (
    "gen_ai.response.model",
    "llm.response.model_name",
    "llm.model_name",
    "langfuse.observation.model.name",
)

# ----------------------------------------------------------------------------- usage

INPUT_TOKEN_KEYS: tuple[str, ...] = (
    "gen_ai.usage.input_tokens",
    "llm.token_count.prompt",
    "gen_ai.usage.prompt_tokens",
)
OUTPUT_TOKEN_KEYS: tuple[str, ...] = (
    "gen_ai.usage.output_tokens",
    "llm.token_count.completion",
    "gen_ai.usage.completion_tokens",
)
CACHE_READ_KEYS: tuple[str, ...] = (
    "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cached_tokens",
)
CACHE_WRITE_KEYS: tuple[str, ...] = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
)
REASONING_KEYS: tuple[str, ...] = (
    "gen_ai.usage.reasoning.output_tokens",
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "gen_ai.usage.completion_tokens_details.reasoning_tokens",
)
TOTAL_TOKEN_KEYS: tuple[str, ...] = (
    "gen_ai.usage.total_tokens",
    "llm.token_count.total",
    "llm.usage.total_tokens",
)

#: Langfuse's usage JSON: exclusive buckets (``input`` excludes cache, ``output`` excludes
#: reasoning); read only when no direct token attribute is present.
LANGFUSE_USAGE_KEY = "langfuse.observation.usage_details"

#: Reported cost, in table order. The Langfuse one is JSON (``total``, else the sum).
LANGFUSE_COST_KEY = "langfuse.observation.cost_details"
REPORTED_COST_KEYS: tuple[str, ...] = (LANGFUSE_COST_KEY, "llm.cost.total", "gen_ai.usage.cost")

# ----------------------------------------------------------------------------- the rest

CONVERSATION_KEYS: tuple[str, ...] = ("gen_ai.conversation.id", "session.id", "langfuse.session.id")
USER_KEYS: tuple[str, ...] = ("user.id", "langfuse.user.id", "enduser.id")
AGENT_NAME_KEYS: tuple[str, ...] = ("gen_ai.agent.name", "agent.name")
AGENT_ID_KEYS: tuple[str, ...] = ("gen_ai.agent.id",)
TOOL_NAME_KEYS: tuple[str, ...] = ("gen_ai.tool.name", "tool.name")
TOOL_CALL_ID_KEYS: tuple[str, ...] = ("gen_ai.tool.call.id",)
TOOL_TYPE_KEYS: tuple[str, ...] = ("gen_ai.tool.type",)
DATA_SOURCE_KEYS: tuple[str, ...] = ("gen_ai.data_source.id",)
ERROR_TYPE_KEYS: tuple[str, ...] = ("error.type",)
ENVIRONMENT_KEYS: tuple[str, ...] = (
    "deployment.environment.name",
    "deployment.environment",
    "langfuse.environment",
)

#: OpenLLMetry names agents and tools through its entity name, by span kind.
TRACELOOP_KIND_KEY = "traceloop.span.kind"
TRACELOOP_ENTITY_KEY = "traceloop.entity.name"
TRACELOOP_ENTITY_FIELDS: Mapping[str, str] = {"agent": "agent_name", "tool": "tool_name"}

#: Fixed string columns and their keys (attribution columns come from settings).
STRING_FIELDS: Mapping[str, tuple[str, ...]] = {
    "request_model": REQUEST_MODEL_KEYS,
    "response_model": RESPONSE_MODEL_KEYS,
    "agent_name": AGENT_NAME_KEYS,
    "agent_id": AGENT_ID_KEYS,
    "tool_name": TOOL_NAME_KEYS,
    "tool_call_id": TOOL_CALL_ID_KEYS,
    "tool_type": TOOL_TYPE_KEYS,
    "data_source_id": DATA_SOURCE_KEYS,
    "conversation_id": CONVERSATION_KEYS,
    "user_id": USER_KEYS,
    "error_type": ERROR_TYPE_KEYS,
    "environment": ENVIRONMENT_KEYS,
}

TOKEN_FIELDS: Mapping[str, tuple[str, ...]] = {
    "input_tokens": INPUT_TOKEN_KEYS,
    "output_tokens": OUTPUT_TOKEN_KEYS,
    "cache_read_tokens": CACHE_READ_KEYS,
    "cache_write_tokens": CACHE_WRITE_KEYS,
    "reasoning_tokens": REASONING_KEYS,
    "total_tokens": TOTAL_TOKEN_KEYS,
}

# ----------------------------------------------------------------------------- attribution

#: Free-form attribution: ``<prefix><key>`` counts as ``<key>``.
ATTRIBUTION_PREFIXES: tuple[str, ...] = (
    "traceloop.association.properties.",
    "langfuse.trace.metadata.",
)
#: OpenInference's free-form metadata: one JSON object string attribute.
OPENINFERENCE_METADATA_KEY = "metadata"

#: Appended to the configured workflow keys (Langfuse names the trace after the workflow).
WORKFLOW_EXTRA_KEYS: tuple[str, ...] = ("langfuse.trace.name",)


def attribution_candidates(keys: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """(attribute key, from metadata JSON) in precedence order for configured ``keys``.

    Each configured key is looked up as sent, then under each free-form prefix, then inside
    OpenInference's ``metadata`` JSON, before the next configured key is tried.
    """
    out: list[tuple[str, bool]] = []
    for key in keys:
        out.append((key, False))
        out.extend((prefix + key, False) for prefix in ATTRIBUTION_PREFIXES)
        out.append((key, True))
    return tuple(out)


# ----------------------------------------------------------------------------- OpenLIT

#: OpenLIT marks its spans (and the resource it creates) with ``telemetry.sdk.name=openlit``
#: and names its tracer ``openlit.otel.tracing``. Its Anthropic instrumentation reports
#: Anthropic's raw ``input_tokens``, which exclude cache reads and writes.
OPENLIT_SDK_KEY = "telemetry.sdk.name"
OPENLIT_SDK_NAME = "openlit"
OPENLIT_SCOPE_PREFIX = "openlit"
OPENLIT_EXCLUSIVE_PROVIDERS: frozenset[str] = frozenset({"anthropic"})
