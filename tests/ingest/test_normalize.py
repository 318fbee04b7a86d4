"""Normalization: one sample per emitter convention, the counting rules, and losslessness."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb
import genai_prices
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ingest.convert.normalize import Normalizer
from ingest.convert.price import Pricer
from ingest.lake.append import append_rows
from schemas.attributes import encode_attributes, encode_value
from schemas.lake import SPANS
from schemas.settings import PriceOverride, Settings
from schemas.spans import SPAN_SCHEMA
from tests.ingest.normalize_helpers import (
    load_case,
    rebuilt_attributes,
    rows,
    sent_attributes,
    spans_of,
)
from tests.lakes import connect, tables

CASES = (
    "genai_current",
    "genai_deprecated",
    "openinference",
    "openllmetry_legacy",
    "openllmetry_current",
    "openlit",
    "langfuse",
    "traces_all_fields",
)
T0 = 1_772_442_000_000_000_000  # 2026-03-02T09:00:00Z


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Settings())


def normalized(normalizer: Normalizer, case: str) -> dict[str, dict[str, Any]]:
    """Rows of a case file by span name."""
    batch = normalizer.normalize(load_case(case), 1_772_442_100_000)
    return {r["name"]: r for r in rows(batch)}


def genai_price(row: dict[str, Any], provider_id: str) -> Decimal:
    """An independent genai-prices calculation of a normalized row."""
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=row["input_tokens"] or 0,
            cache_read_tokens=row["cache_read_tokens"] or 0,
            cache_write_tokens=row["cache_write_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            output_reasoning_tokens=row["reasoning_tokens"] or 0,
        ),
        row["response_model"],
        provider_id=provider_id,
        genai_request_timestamp=datetime.fromtimestamp(row["start_time"] / 1e9, UTC),
    )
    return calc.total_price.quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN)


def tokens(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["input_tokens"],
        row["output_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["reasoning_tokens"],
        row["total_tokens"],
        row["usage_basis"],
    )


# ----------------------------------------------------------------------------- conventions


def test_otel_genai_current_names(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "genai_current")
    chat = r["chat gpt-4o"]
    assert chat["is_model_call"] and chat["operation"] == "chat"
    assert (chat["provider"], chat["request_model"], chat["response_model"]) == (
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert tokens(chat) == (3000, 400, 2048, None, None, 3400, "inclusive")
    assert chat["cost_source"] == "genai-prices"
    assert chat["price_ref"] == f"genai-prices@{genai_prices.__version__}:openai/gpt-4o"
    assert chat["cost_usd"] == genai_price(chat, "openai")
    assert chat["role"] == "planner"
    reasoning = r["chat o4-mini"]
    assert tokens(reasoning) == (1200, 250, None, None, 192, 1450, "inclusive")
    assert reasoning["cost_usd"] == genai_price(reasoning, "openai")
    tool = r["execute_tool search_tickets"]
    assert (tool["operation"], tool["tool_name"], tool["tool_type"], tool["error_type"]) == (
        "execute_tool",
        "search_tickets",
        "function",
        "timeout",
    )
    assert tool["tool_call_id"] == "call_mszuSIzqtI65i1wAUOE8w5H4"
    assert tool["cost_source"] is None and tool["cost_usd"] is None


def test_agent_rollup_is_not_counted_twice(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "genai_current")
    root = r["invoke_agent triage"]
    assert root["operation"] == "invoke_agent" and not root["is_model_call"]
    assert tokens(root) == (None,) * 6 + (None,)
    assert root["cost_usd"] is None and root["cost_source"] is None
    # the roll-up stays where it was sent, untouched
    assert dict(root["attributes"])["gen_ai.usage.input_tokens"] == "4200"
    children = [x for x in r.values() if x["is_model_call"]]
    assert sum(x["input_tokens"] for x in children) == 4200  # the roll-up equals the leaves
    # attribution on the root
    assert (root["correlation_id"], root["task_id"], root["workflow"]) == (
        "attempt-7f3a",
        "TICKET-4711",
        "support-triage",
    )
    assert (root["workflow_version"], root["team"], root["agent_name"]) == (
        "v2",
        "cx-platform",
        "triage-agent",
    )
    assert root["role"] == "triage-agent"  # gen_ai.agent.name is the second role key


def test_otel_genai_deprecated_names(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "genai_deprecated")
    mini = r["chat gpt-4o-mini"]
    assert (mini["provider"], mini["response_model"]) == ("openai", "gpt-4o-mini-2024-07-18")
    assert tokens(mini) == (820, 95, None, None, None, 915, "inclusive")
    assert dict(mini["source_keys"])["input_tokens"] == "gen_ai.usage.prompt_tokens"
    assert mini["cost_usd"] == genai_price(mini, "openai")
    azure = r["chat gpt-4o"]
    assert azure["provider"] == "azure.ai.openai"  # az.ai.openai folded
    assert dict(azure["attributes"])["gen_ai.system"] == "az.ai.openai"  # kept as sent
    assert azure["response_model"] == "gpt-4o"  # request model stands in
    assert azure["price_ref"].endswith(":azure/gpt-4o")
    assert azure["cost_usd"] == genai_price(azure, "azure")


def test_openinference(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "openinference")
    llm = r["ChatCompletion"]
    assert llm["operation"] == "chat" and llm["is_model_call"]
    assert (llm["provider"], llm["request_model"], llm["response_model"]) == (
        "openai",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-mini-2024-07-18",
    )
    assert tokens(llm) == (1500, 120, 1024, None, None, 1620, "inclusive")
    assert llm["cost_usd"] == genai_price(llm, "openai")
    assert llm["reported_cost_usd"] == 0.000284  # kept beside ours
    # free-form attribution inside the metadata JSON
    assert (llm["correlation_id"], llm["task_id"], llm["team"]) == (
        "oi-attempt-1",
        "ORDER-1234",
        "ops",
    )
    assert (llm["conversation_id"], llm["user_id"]) == ("sess-42", "user-9")
    assert "metadata" in dict(llm["attributes"])  # parsed, so it stays as sent
    agent = r["Agent"]
    assert agent["operation"] == "invoke_agent" and not agent["is_model_call"]
    assert agent["input_tokens"] is None
    tool = r["lookup_order"]
    assert (tool["operation"], tool["tool_name"]) == ("execute_tool", "lookup_order")
    embed = r["embed"]
    assert (embed["operation"], embed["is_model_call"]) == ("embeddings", True)
    assert tokens(embed) == (42, None, None, None, None, 42, "inclusive")
    assert embed["price_ref"].endswith(":openai/text-embedding-3-small")


def test_openllmetry_legacy(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "openllmetry_legacy")
    chat = r["openai.chat"]
    assert (chat["operation"], chat["provider"]) == ("chat", "openai")
    assert dict(chat["attributes"])["gen_ai.system"] == "OpenAI"  # lower-cased: kept as sent
    assert tokens(chat) == (1800, 300, None, None, None, 2100, "inclusive")
    assert dict(chat["source_keys"])["total_tokens"] == "llm.usage.total_tokens"
    assert chat["cost_usd"] == genai_price(chat, "openai")
    assert (chat["workflow"], chat["correlation_id"]) == ("enrich_lead", "tl-attempt-9")
    completion = r["openai.completion"]
    assert completion["operation"] == "text_completion" and completion["is_model_call"]
    workflow = r["enrich_lead.workflow"]
    assert workflow["operation"] == "invoke_workflow" and not workflow["is_model_call"]
    assert workflow["total_tokens"] is None  # a roll-up
    assert workflow["team"] == "growth"  # traceloop.association.properties.team.id
    tool = r["search_web.tool"]
    assert (tool["operation"], tool["tool_name"]) == ("execute_tool", "search_web")


def test_openllmetry_current_input_includes_cache(normalizer: Normalizer) -> None:
    chat = normalized(normalizer, "openllmetry_current")["anthropic.chat"]
    assert chat["provider"] == "anthropic"
    assert tokens(chat) == (12600, 800, 10000, 2000, None, 13400, "inclusive")
    assert chat["cost_usd"] == genai_price(chat, "anthropic")
    assert (chat["workflow"], chat["task_id"]) == ("review_pr", "PR-881")


def test_openlit_anthropic_input_is_exclusive(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "openlit")
    claude = r["chat claude-3-5-sonnet-latest"]
    # Anthropic's raw input_tokens (50) exclude the 2000 read and 500 written
    assert tokens(claude) == (2550, 200, 2000, 500, None, 2750, "exclusive:openlit-anthropic")
    assert dict(claude["attributes"])["gen_ai.usage.input_tokens"] == "50"  # transformed: kept
    assert claude["cost_usd"] == genai_price(claude, "anthropic")
    assert claude["reported_cost_usd"] == 0.003915
    assert claude["environment"] == "default"
    gpt = r["chat gpt-4o"]  # OpenLIT's OpenAI spans are inclusive
    assert tokens(gpt) == (1500, 100, None, None, None, 1600, "inclusive")


def test_openlit_is_recognised_by_span_attribute_alone() -> None:
    request = load_case("openlit")
    rs = request.resource_spans[0]
    del rs.resource.attributes[:]
    rs.scope_spans[0].scope.name = "my.tracer"
    batch = Normalizer(Settings()).normalize(request, 0)
    claude = rows(batch)[0]
    assert claude["usage_basis"] == "exclusive:openlit-anthropic"
    assert claude["input_tokens"] == 2550


def test_langfuse_usage_details(normalizer: Normalizer) -> None:
    r = normalized(normalizer, "langfuse")
    gen = r["ChatAnthropic"]
    assert gen["operation"] == "chat" and gen["is_model_call"]
    assert gen["response_model"] == "claude-3-5-sonnet-20241022"
    # buckets: input 400 + cache read 3000 + cache creation 600
    assert tokens(gen) == (4000, 150, 3000, 600, None, 4150, "exclusive:langfuse-usage-details")
    assert gen["cost_usd"] == genai_price(gen, "anthropic")
    assert gen["reported_cost_usd"] == 0.0066  # cost_details total
    root = r["support-triage"]
    assert (root["workflow"], root["task_id"], root["correlation_id"]) == (
        "support-triage",
        "TICKET-99",
        "lf-attempt-2",
    )
    assert (root["user_id"], root["conversation_id"], root["environment"]) == (
        "user-77",
        "sess-77",
        "production",
    )


# ----------------------------------------------------------------------------- rules


def _span(attrs: dict[str, Any], **fields: Any) -> Span:
    span = Span(
        **{
            "trace_id": bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
            "span_id": bytes.fromhex("b7ad6b7169203331"),
            "name": "s",
            "start_time_unix_nano": T0,
            "end_time_unix_nano": T0 + 1000,
            **fields,
        }
    )
    for key, value in attrs.items():
        kv = span.attributes.add()
        kv.key = key
        if isinstance(value, bool):
            kv.value.bool_value = value
        elif isinstance(value, int):
            kv.value.int_value = value
        elif isinstance(value, float):
            kv.value.double_value = value
        else:
            kv.value.string_value = value
    return span


def _one(
    span: Span, settings: Settings | None = None, pricer: Pricer | None = None
) -> dict[str, Any]:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(span)
    return rows(Normalizer(settings or Settings(), pricer).normalize(request, 0))[0]


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
}


def test_cache_parts_exceeding_input_mean_exclusive_input() -> None:
    row = _one(
        _span(
            {
                **CHAT,
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.usage.cache_read.input_tokens": 900,
            }
        )
    )
    assert tokens(row) == (1000, 10, 900, None, None, 1010, "exclusive:cache>input")
    assert dict(row["attributes"])["gen_ai.usage.input_tokens"] == "100"


def test_counts_sent_as_strings_or_doubles_are_read_and_kept() -> None:
    row = _one(
        _span({**CHAT, "gen_ai.usage.input_tokens": "120", "gen_ai.usage.output_tokens": 7.0})
    )
    assert (row["input_tokens"], row["output_tokens"]) == (120, 7)
    assert dict(row["attributes"]) == {
        "gen_ai.usage.input_tokens": "120",
        "gen_ai.usage.output_tokens": "7.0",
    }
    assert row["attribute_types"] == "sd"


def test_model_without_operation_but_with_usage_is_a_model_call() -> None:
    row = _one(_span({"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10}))
    assert row["is_model_call"] and row["operation"] is None and row["input_tokens"] == 10
    row = _one(_span({"gen_ai.request.model": "gpt-4o-mini"}))
    assert not row["is_model_call"]


def test_unknown_model_is_unpriced_never_zero() -> None:
    span = {**CHAT, "gen_ai.request.model": "acme-secret-9000", "gen_ai.usage.input_tokens": 10}
    row = _one(_span(span))
    assert (row["cost_usd"], row["cost_source"], row["price_ref"]) == (None, "unpriced", None)
    row = _one(_span({**span, "gen_ai.usage.cost": 0.25}))
    assert (row["cost_usd"], row["cost_source"]) == (Decimal("0.25"), "reported")
    assert row["reported_cost_usd"] == 0.25


def test_model_call_without_usage_is_unpriced() -> None:
    row = _one(_span(CHAT))
    assert row["is_model_call"] and row["cost_source"] == "unpriced" and row["cost_usd"] is None
    assert row["usage_basis"] is None and row["total_tokens"] is None


def test_override_prices_a_normalized_span() -> None:
    settings = Settings(
        prices=(PriceOverride(model="gpt-4o*", input=Decimal("2"), output=Decimal("8")),)
    )
    row = _one(
        _span(
            {**CHAT, "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 500_000}
        ),
        settings,
    )
    assert (row["cost_usd"], row["cost_source"], row["price_ref"]) == (
        Decimal("6"),
        "override",
        "override:gpt-4o*",
    )


def test_error_type_from_exception_event_on_error_status() -> None:
    span = _span({"gen_ai.operation.name": "execute_tool"})
    span.status.code = Status.STATUS_CODE_ERROR
    ev = span.events.add(name="exception", time_unix_nano=T0 + 5)
    ev.attributes.add(key="exception.type", value=AnyValue(string_value="ValueError"))
    row = _one(span)
    assert row["error_type"] == "ValueError"
    assert "error_type" not in dict(row["source_keys"])  # not a span attribute
    span.status.code = Status.STATUS_CODE_OK
    assert _one(span)["error_type"] is None


def test_configured_attribution_keys_and_free_form_spellings() -> None:
    settings = Settings(
        correlation_keys=("run.id", "correlation.id"),
        team_keys=("org.team",),
        role_keys=("agent.role",),
    )
    row = _one(
        _span(
            {
                "correlation.id": "second",
                "traceloop.association.properties.run.id": "first",
                "langfuse.trace.metadata.org.team": "payments",
                "agent.role": "drafter",
                "workflow.role": "ignored",
            }
        ),
        settings,
    )
    assert (row["correlation_id"], row["team"], row["role"]) == ("first", "payments", "drafter")
    assert dict(row["source_keys"])["correlation_id"] == "traceloop.association.properties.run.id"
    assert dict(row["attributes"]) == {"correlation.id": "second", "workflow.role": "ignored"}


def test_baggage_copied_to_spans_counts_as_the_key() -> None:
    row = _one(_span({"task.id": "INV-1", "team.name": "finance"}))
    assert (row["task_id"], row["team"]) == ("INV-1", "finance")


def test_non_string_attribution_is_text_and_kept() -> None:
    row = _one(_span({"task.id": 4711}))
    assert row["task_id"] == "4711"
    assert dict(row["attributes"]) == {"task.id": "4711"} and row["attribute_types"] == "i"


def test_resource_stand_ins_and_service_name() -> None:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in {
        "service.name": "billing",
        "service.namespace": "fin",
        "service.version": "9.1",
        "task.attempt.id": "res-attempt",
    }.items():
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    rs.scope_spans.add().spans.append(_span({}))
    row = rows(Normalizer(Settings()).normalize(request, 0))[0]
    assert (row["service_name"], row["resource_workflow"], row["resource_team"]) == (
        "billing",
        "billing",
        "fin",
    )
    assert (row["resource_version"], row["resource_correlation_id"]) == ("9.1", "res-attempt")
    assert row["workflow"] is None  # the query layer decides precedence


def test_duplicate_keys_first_wins_and_are_counted() -> None:
    span = _span({"task.id": "first", "x": "1"}, dropped_attributes_count=3)
    span.attributes.add(key="task.id", value=AnyValue(string_value="second"))
    span.attributes.add(key="x", value=AnyValue(string_value="2"))
    row = _one(span)
    assert row["task_id"] == "first"
    assert dict(row["attributes"]) == {"x": "1"}
    assert row["dropped_attributes_count"] == 5


def test_ids_times_and_empty_strings() -> None:
    span = _span(
        {"gen_ai.agent.name": ""},
        kind=Span.SPAN_KIND_CLIENT,
        trace_state="",
        flags=0,
        trace_id=bytes.fromhex("ABCDEF0123456789ABCDEF0123456789"),
    )
    row = _one(span)
    assert row["trace_id"] == "abcdef0123456789abcdef0123456789"
    assert row["parent_span_id"] is None and row["trace_state"] is None and row["flags"] is None
    assert (row["start_time"], row["duration_ns"], row["kind"]) == (T0, 1000, 3)
    assert row["agent_name"] is None and dict(row["attributes"]) == {"gen_ai.agent.name": ""}
    assert row["status_code"] == 0 and row["status_message"] is None


def test_empty_request_gives_an_empty_batch_of_the_schema(normalizer: Normalizer) -> None:
    batch = normalizer.normalize(ExportTraceServiceRequest(), 0)
    assert batch.num_rows == 0 and batch.schema.equals(SPAN_SCHEMA)


@pytest.mark.parametrize("case", CASES)
def test_batch_schema_and_bytes_entry_point(normalizer: Normalizer, case: str) -> None:
    request = load_case(case)
    batch = normalizer.normalize(request, 7)
    assert batch.schema.equals(SPAN_SCHEMA, check_metadata=True)
    assert batch.num_rows == len(spans_of(request))
    assert Normalizer(Settings()).normalize_bytes(request.SerializeToString(), 7).equals(batch)


# ----------------------------------------------------------------------------- lossless


def _every_anyvalue() -> dict[str, AnyValue]:
    nested = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="a", value=AnyValue(int_value=1)),
                KeyValue(
                    key="b",
                    value=AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=1.5)])),
                ),
            ]
        )
    )
    return {
        "str": AnyValue(string_value="héllo ✓"),
        "str.empty": AnyValue(string_value=""),
        "str.long": AnyValue(string_value="x" * 300),
        "int": AnyValue(int_value=-(2**63)),
        "int.big": AnyValue(int_value=2**63 - 1),
        "int.zero": AnyValue(int_value=0),
        "int.127": AnyValue(int_value=127),
        "int.128": AnyValue(int_value=128),
        "int.16383": AnyValue(int_value=16383),
        "int.16384": AnyValue(int_value=16384),
        "int.minus1": AnyValue(int_value=-1),
        "double": AnyValue(double_value=0.1),
        "double.neg0": AnyValue(double_value=-0.0),
        "double.nan": AnyValue(double_value=math.nan),
        "double.inf": AnyValue(double_value=-math.inf),
        "double.big": AnyValue(double_value=1e300),
        "bool.true": AnyValue(bool_value=True),
        "bool.false": AnyValue(bool_value=False),
        "bytes": AnyValue(bytes_value=b"\x00\xff"),
        "array": AnyValue(
            array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])
        ),
        "array.bytes": AnyValue(array_value=ArrayValue(values=[AnyValue(bytes_value=b"x")])),
        "kvlist": nested,
        "kvlist.dup": AnyValue(
            kvlist_value=KeyValueList(
                values=[KeyValue(key="k", value=AnyValue()), KeyValue(key="k", value=AnyValue())]
            )
        ),
        "empty": AnyValue(),
    }


def test_attribute_encoding_equals_the_reference_for_every_anyvalue_kind() -> None:
    from ingest.receive.wire import decode_keyvalue

    for key, value in _every_anyvalue().items():
        raw = KeyValue(key=key, value=value).SerializeToString()
        got_key, text, code, _ = decode_keyvalue(raw)
        assert (got_key, text, code) == (key, *encode_value(value)), key
    # non-canonical encodings: value before key, a repeated field, an empty key
    encoded = AnyValue(string_value="v").SerializeToString()
    swapped = b"\x12" + bytes([len(encoded)]) + encoded + b"\x0a\x01k"
    assert decode_keyvalue(swapped)[:3] == ("k", "v", "s")
    twice = KeyValue(key="k", value=AnyValue(int_value=1)).SerializeToString() + b"\x12\x02\x18\x05"
    assert decode_keyvalue(twice)[:3] == ("k", *encode_value(KeyValue.FromString(twice).value))
    assert decode_keyvalue(KeyValue(key="", value=AnyValue(int_value=3)).SerializeToString())[
        :3
    ] == (
        "",
        "3",
        "i",
    )


def test_every_anyvalue_kind_survives_in_span_event_link_resource_and_scope() -> None:
    values = _every_anyvalue()
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url="https://r")
    ss = rs.scope_spans.add(schema_url="https://s")
    ss.scope.name, ss.scope.version = "scope", "1.0"
    ss.scope.dropped_attributes_count = 2
    rs.resource.dropped_attributes_count = 1
    span = _span({}, dropped_events_count=4, dropped_links_count=5, trace_state="k=v", flags=0x301)
    span.status.code, span.status.message = Status.STATUS_CODE_ERROR, "boom"
    ev = span.events.add(name="e", time_unix_nano=T0 + 1, dropped_attributes_count=6)
    link = span.links.add(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        trace_state="a=b",
        flags=1,
        dropped_attributes_count=7,
    )
    for target in (
        span.attributes,
        ev.attributes,
        link.attributes,
        rs.resource.attributes,
        ss.scope.attributes,
    ):
        target.extend(KeyValue(key=k, value=v) for k, v in values.items())
    ss.spans.append(span)
    row = rows(Normalizer(Settings()).normalize(request, 0))[0]
    assert rebuilt_attributes(row) == sent_attributes(span)
    for got_entries, got_types, sent in (
        (row["events"][0]["attributes"], row["events"][0]["attribute_types"], ev),
        (row["links"][0]["attributes"], row["links"][0]["attribute_types"], link),
        (row["resource_attributes"], row["resource_attribute_types"], rs.resource),
        (row["scope_attributes"], row["scope_attribute_types"], ss.scope),
    ):
        entries, types, _ = encode_attributes(sent.attributes)
        assert (got_entries, got_types) == (entries, types)
    assert row["events"][0] | {"attributes": None, "attribute_types": None} == {
        "time": T0 + 1,
        "name": "e",
        "attributes": None,
        "attribute_types": None,
        "dropped_attributes_count": 6,
    }
    assert row["links"][0]["trace_id"] == bytes(range(16)).hex()
    assert (
        row["links"][0]["span_id"],
        row["links"][0]["trace_state"],
        row["links"][0]["flags"],
    ) == (
        bytes(range(8)).hex(),
        "a=b",
        1,
    )
    assert row["links"][0]["dropped_attributes_count"] == 7
    assert (row["dropped_events_count"], row["dropped_links_count"]) == (4, 5)
    assert (row["trace_state"], row["flags"], row["status_code"], row["status_message"]) == (
        "k=v",
        0x301,
        2,
        "boom",
    )
    assert (row["resource_dropped_attributes_count"], row["scope_dropped_attributes_count"]) == (
        1,
        2,
    )
    assert (row["resource_schema_url"], row["scope_schema_url"]) == ("https://r", "https://s")
    assert (row["scope_name"], row["scope_version"]) == ("scope", "1.0")
    assert base64.b64decode(dict(row["events"][0]["attributes"])["bytes"]) == b"\x00\xff"


@pytest.mark.parametrize("case", CASES)
def test_round_trip_of_every_attribute(normalizer: Normalizer, case: str) -> None:
    request = load_case(case)
    batch = normalizer.normalize(request, 0)
    for span, row in zip(spans_of(request), rows(batch), strict=True):
        assert rebuilt_attributes(row) == sent_attributes(span), span.name
        assert row["span_id"] == span.span_id.hex()
        assert row["start_time"] == span.start_time_unix_nano
        assert row["start_time"] + row["duration_ns"] == span.end_time_unix_nano
        assert len(row["events"]) == len(span.events) and len(row["links"]) == len(span.links)


def test_spans_view_rebuilds_all_attributes(normalizer: Normalizer, lake: str) -> None:
    sent: dict[str, dict[str, str]] = {}
    for n, case in enumerate(CASES):
        request = load_case(case)
        rows_of_case = pa.Table.from_batches([normalizer.normalize(request, 0)])
        append_rows(tables(lake), SPANS, rows_of_case, prefix=f"case-{n}")
        for span in spans_of(request):
            sent[span.span_id.hex() + span.trace_id.hex()] = {
                k: v for k, (v, _) in sent_attributes(span).items()
            }
    con = connect(lake)
    got = {
        span_id + trace_id: dict(attrs)
        for span_id, trace_id, attrs in con.execute(
            "SELECT span_id, trace_id, all_attributes FROM spans"
        ).fetchall()
    }
    assert got == sent


def test_reported_cost_text_equals_duckdb_double_text() -> None:
    con = duckdb.connect()
    for x in (0.000284, 1e-05, 0.1 + 0.2, 123456789.125, 5e-324, 1e22, 2.5):
        assert con.execute("SELECT ?::DOUBLE::VARCHAR", [x]).fetchone() == (repr(x),)


def test_cost_matches_pricer_for_the_workload() -> None:
    from bench.workload import Workload, make_request

    request = make_request(Workload(spans_per_request=64, services_per_request=2))
    pricer = Pricer()
    for row in rows(Normalizer(Settings(), pricer).normalize(request, 0)):
        if not row["is_model_call"]:
            assert row["cost_usd"] is None and row["input_tokens"] is None
            continue
        provider_id = row["price_ref"].split(":")[1].split("/")[0]
        assert row["cost_usd"] == genai_price(row, provider_id)


def test_the_same_normalizer_gives_the_same_batch_twice(normalizer: Normalizer) -> None:
    request = load_case("openinference")
    assert normalizer.normalize(request, 1).equals(normalizer.normalize(request, 1))


def test_odd_ids_missing_end_and_out_of_range_values() -> None:
    """Whatever validation let through still converts (nothing acknowledged is lost)."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.append(_span({}, parent_span_id=b"\x01\x02\x03", end_time_unix_nano=0, kind=300))
    spans.append(_span({}, start_time_unix_nano=2**64 - 1, end_time_unix_nano=2**64 - 1))
    spans[1].status.code = Status.STATUS_CODE_OK
    first, second = rows(Normalizer(Settings()).normalize(request, 0))
    # no end: kept with duration 0; a kind beyond int8: null, never a failed batch; both
    # noted as sent (ingest.convert.notes)
    assert first["parent_span_id"] == "010203" and first["duration_ns"] == 0
    assert first["kind"] is None
    assert first["attributes"] == [
        ("tasklake.end_time_unix_nano", "0"),
        ("tasklake.kind", "300"),
    ]
    assert second["start_time"] == 2**63 - 1 and second["duration_ns"] == 0
    assert second["status_code"] == 1


def test_a_key_seen_before_with_values_of_every_kind() -> None:
    """Decoding takes a shortcut for keys seen before; it must agree for every value kind."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for value in _every_anyvalue().values():
        span = _span({})
        span.attributes.add(key="same.key", value=value)
        span.attributes.add(key="gen_ai.usage.input_tokens", value=value)
        span.attributes.add(key="gen_ai.request.model", value=value)
        spans.append(span)
    for span, row in zip(spans, rows(Normalizer(Settings()).normalize(request, 0)), strict=True):
        assert rebuilt_attributes(row) == sent_attributes(span)
