"""Realistic normalized span rows (``SPAN_SCHEMA``), built directly, for storage tests and the
storage bench: agent traces of a dozen spans with GenAI usage, tools and retrieval, about 15
attributes per span split between typed columns and the lossless maps."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pyarrow as pa

from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA

DAY_NS = 86_400 * 10**9
_MODELS = (
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", Decimal("2.5"), Decimal("10")),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", Decimal("0.15"), Decimal("0.6")),
    ("anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514", Decimal("3"), Decimal("15")),
)
_TOOLS = ("search_kb", "lookup_order", "send_email", "create_ticket", "get_weather", "sql_query")
_WORKFLOWS = ("support-triage", "invoice-matching", "lead-qualify", "code-review")
_TEAMS = ("support", "finance", "sales", "platform")
_ROLES = ("planner", "drafter", "verifier")


def _hex(rng: random.Random, nbytes: int) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def span_rows(
    n: int,
    *,
    seed: int = 0,
    day_ns: int = 20_454 * DAY_NS,
    days: int = 1,
    first_number: int = 0,
    ingested_at_ms: int = 1_767_225_600_000,
) -> pa.Table:
    """``n`` spans (whole traces of 12, the last one cut) over ``days`` UTC days.

    Each span's ``name`` ends with its number (``first_number`` upwards), so tests can check
    identity and counts.
    """
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    number = first_number
    while number < first_number + n:
        trace = _hex(rng, 16)
        t0 = day_ns + rng.randrange(days) * DAY_NS + rng.randrange(DAY_NS - 3_600 * 10**9)
        root = _hex(rng, 8)
        workflow = rng.choice(_WORKFLOWS)
        team = _TEAMS[_WORKFLOWS.index(workflow)]
        service = f"{workflow}-agent"
        attempt = f"att-{_hex(rng, 6)}"
        task = f"T-{rng.randrange(10**6):06d}"
        t = t0
        for i in range(12):
            if number >= first_number + n:
                break
            kind = (
                "root"
                if i == 0
                else (
                    "chat",
                    "tool",
                    "chat",
                    "retrieval",
                    "tool",
                    "chat",
                    "tool",
                    "chat",
                    "embeddings",
                    "tool",
                    "chat",
                )[i - 1]
            )
            row: dict[str, Any] = {name: None for name in SPAN_SCHEMA.names}
            span_id = root if i == 0 else _hex(rng, 8)
            dur = rng.randrange(5, 4_000) * 10**6
            row.update(
                schema_version=SCHEMA_VERSION,
                trace_id=trace,
                span_id=span_id,
                parent_span_id=None if i == 0 else root,
                kind=2 if i == 0 else 3,
                start_time=t,
                duration_ns=dur,
                status_code=0,
                service_name=service,
                is_model_call=kind == "chat",
                correlation_id=attempt if i == 0 else None,
                task_id=task if i == 0 else None,
                workflow=workflow if i == 0 else None,
                team=team if i == 0 else None,
                resource_workflow=service,
                resource_version="1.4.2",
                resource_attributes={
                    "service.name": service,
                    "service.version": "1.4.2",
                    "telemetry.sdk.name": "opentelemetry",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.version": "1.27.0",
                    "host.name": f"worker-{rng.randrange(4)}",
                    "deployment.environment": "prod",
                },
                scope_name="opentelemetry.instrumentation.openai",
                scope_version="0.40.0",
                ingested_at=ingested_at_ms,
            )
            attrs: dict[str, str] = {}
            types = None
            sources: dict[str, str] = {}
            if kind == "root":
                row.update(name=f"invoke_agent {workflow} #{number}", operation="invoke_agent")
                row["agent_name"] = workflow
                sources = {
                    "operation": "gen_ai.operation.name",
                    "agent_name": "gen_ai.agent.name",
                    "correlation_id": "correlation.id",
                    "task_id": "task.id",
                    "workflow": "workflow.id",
                    "team": "team.id",
                }
                attrs = {"gen_ai.agent.id": f"agent-{workflow}"}
            elif kind == "chat":
                provider, model, resp, pin, pout = rng.choice(_MODELS)
                inp = rng.randrange(200, 6_000)
                out = rng.randrange(20, 900)
                cached = rng.choice((0, 0, inp // 2))
                cost = (pin * inp + pout * out) / Decimal(10**6)
                row.update(
                    name=f"chat {model} #{number}",
                    operation="chat",
                    provider=provider,
                    request_model=model,
                    response_model=resp,
                    input_tokens=inp,
                    output_tokens=out,
                    cache_read_tokens=cached or None,
                    total_tokens=inp + out,
                    usage_basis="inclusive",
                    cost_usd=cost.quantize(Decimal("1e-12")),
                    cost_source="genai-prices",
                    price_ref=f"genai-prices@0.2.3:{provider}/{model}",
                    role=rng.choice(_ROLES),
                )
                sources = {
                    "operation": "gen_ai.operation.name",
                    "provider": "gen_ai.provider.name",
                    "request_model": "gen_ai.request.model",
                    "response_model": "gen_ai.response.model",
                    "input_tokens": "gen_ai.usage.input_tokens",
                    "output_tokens": "gen_ai.usage.output_tokens",
                    "role": "workflow.role",
                }
                attrs = {
                    "gen_ai.request.temperature": rng.choice(("0.0", "0.2", "0.7")),
                    "gen_ai.request.max_tokens": "1024",
                    "gen_ai.response.id": f"chatcmpl-{_hex(rng, 12)}",
                    "gen_ai.response.finish_reasons": '["stop"]',
                    "server.address": "api.openai.com"
                    if provider == "openai"
                    else "api.anthropic.com",
                    "server.port": "443",
                }
                types = "dissas"
            elif kind == "tool":
                tool = rng.choice(_TOOLS)
                row.update(
                    name=f"execute_tool {tool} #{number}",
                    operation="execute_tool",
                    tool_name=tool,
                    tool_call_id=f"call_{_hex(rng, 12)}",
                    tool_type="function",
                )
                sources = {
                    "operation": "gen_ai.operation.name",
                    "tool_name": "gen_ai.tool.name",
                    "tool_call_id": "gen_ai.tool.call.id",
                    "tool_type": "gen_ai.tool.type",
                }
                attrs = {"gen_ai.tool.description": f"The {tool} tool"}
            elif kind == "retrieval":
                row.update(
                    name=f"retrieval kb #{number}", operation="retrieval", data_source_id="kb-main"
                )
                sources = {
                    "operation": "gen_ai.operation.name",
                    "data_source_id": "gen_ai.data_source.id",
                }
                attrs = {"db.system": "pgvector", "retrieval.top_k": "8"}
                types = "si"
            else:
                row.update(
                    name=f"embeddings #{number}",
                    operation="embeddings",
                    provider="openai",
                    request_model="text-embedding-3-small",
                    input_tokens=rng.randrange(10, 400),
                )
                sources = {"operation": "gen_ai.operation.name", "provider": "gen_ai.system"}
            row["attributes"] = attrs
            row["attribute_types"] = types
            row["source_keys"] = sources
            for name in SPAN_SCHEMA.names:
                cols[name].append(row[name])
            number += 1
            t += rng.randrange(1, 2_000) * 10**6
    return pa.Table.from_pydict(
        {k: [list(v.items()) if isinstance(v, dict) else v for v in vs] for k, vs in cols.items()},
        schema=SPAN_SCHEMA,
    )
