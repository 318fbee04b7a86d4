"""What ``tasklake demo`` sends, decided before anything is sent: a few days of four agent
workflows, as plain data. Seeded, so the same seed, clock and size give the same traffic.

The story it tells is the worked example of the design: support triage v1 plans with a large
model and drafts with a mid-size one ($1.008 an attempt, 75% of tickets completed, a few
retried: about $1.40 per completed ticket); v2 plans small, drafts mid-size and checks with a
small verifier ($0.3486 an attempt, 92% completed: about $0.38). Tickets are completed only
once the 48-hour reopen window has passed, so the story is placed before that window and
only a trickle of v2 tickets arrives inside it (pending, shown beside the figure).
Around it: invoice extraction (cheap, some human rework), code review (expensive, cached
prompts, escalations to humans, retries after tool timeouts) and lead research (a reasoning
model, web search), with the costs that are not inference (labor, infrastructure, licences,
rework) as cost entries.

Models are real ones priced by genai-prices, so any tasklake server prices the calls the same
way; the token counts are chosen so that the figures above come out at list prices.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

#: The reopen window the story keeps clear of (tasklake's default), plus the longest delay
#: of a completion signal and a margin: every story ticket is decided when the demo ends.
DECIDED_BEFORE = timedelta(hours=54)
MIN_DAYS = 4


@dataclass(frozen=True)
class Step:
    """One span under an agent: a model call (``chat``, ``embeddings``), a ``retrieval`` or an
    ``execute_tool``; ``name`` is the model, data source or tool."""

    op: str
    name: str
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    seconds: float = 0.5


@dataclass(frozen=True)
class Agent:
    """An agent span (``invoke_agent``, its role) and the steps it runs, in order."""

    role: str
    steps: tuple[Step, ...]


def chat(provider: str, model: str, inp: int, out: int, **extra: int) -> Step:
    # time to first token plus generation at ~70 tokens/s
    return Step("chat", model, provider, inp, out, seconds=0.6 + out / 70, **extra)


def tool(name: str, seconds: float = 0.3) -> Step:
    return Step("execute_tool", name, seconds=seconds)


def retrieval(source: str) -> Step:
    return Step("retrieval", source, seconds=0.25)


EMBED = Step("embeddings", "text-embedding-3-small", "openai", 600, 0, seconds=0.1)

#: Each workflow version: its agents. Costs per attempt at list prices in the comments.
VERSIONS: dict[tuple[str, str], tuple[Agent, ...]] = {
    # planner 0.825 + drafter 0.183 = $1.008 (+ $0.000012 embedding)
    ("support-triage", "v1"): (
        Agent("planner", (chat("anthropic", "claude-opus-4-1", 40_000, 3_000),)),
        Agent("retriever", (EMBED, retrieval("kb-support-articles"))),
        Agent(
            "drafter",
            (tool("crm.get_customer"), chat("anthropic", "claude-sonnet-4-5", 25_000, 7_200)),
        ),
    ),
    # planner 0.0096 + drafter 0.224 + verifier 0.115 = $0.3486 (+ embedding)
    ("support-triage", "v2"): (
        Agent("planner", (chat("openai", "gpt-4.1-mini", 20_000, 1_000),)),
        Agent("retriever", (EMBED, retrieval("kb-support-articles"))),
        Agent("drafter", (tool("crm.get_customer"), chat("openai", "gpt-4.1", 80_000, 8_000))),
        Agent("verifier", (chat("anthropic", "claude-haiku-4-5", 100_000, 3_000),)),
    ),
    # extractor 0.0051 + validator 0.0003: about half a cent
    ("invoice-extraction", "v3"): (
        Agent(
            "extractor",
            (tool("ocr.read_pdf", 1.2), chat("openai", "gpt-4.1-mini", 8_000, 1_200)),
        ),
        Agent("validator", (tool("erp.lookup_vendor"), chat("openai", "gpt-5-nano", 3_000, 400))),
    ),
    # planner 0.12 + reviewer ~0.198 (most of the diff from the prompt cache) + verifier 0.0068
    ("code-review", "v5"): (
        Agent(
            "planner",
            (tool("git.diff", 0.8), chat("anthropic", "claude-sonnet-4-5", 30_000, 2_000)),
        ),
        Agent(
            "reviewer",
            (
                retrieval("repo-code-index"),
                chat("anthropic", "claude-sonnet-4-5", 60_000, 4_000, cache_read_tokens=40_000),
            ),
        ),
        Agent("verifier", (chat("openai", "gpt-5-mini", 15_000, 1_500),)),
    ),
    # researcher 0.085 (with reasoning) + writer 0.0032
    ("lead-research", "v2"): (
        Agent(
            "researcher",
            (
                tool("web.search", 1.5),
                tool("web.fetch", 2.0),
                chat("openai", "gpt-5", 20_000, 6_000, reasoning_tokens=4_000),
            ),
        ),
        Agent("writer", (chat("openai", "gpt-4.1-mini", 4_000, 1_000),)),
    ),
}

TEAMS = {
    "support-triage": "support",
    "invoice-extraction": "finance",
    "code-review": "platform",
    "lead-research": "growth",
}
SERVICES = {
    "support-triage": "support-bot",
    "invoice-extraction": "ap-automation",
    "code-review": "review-agent",
    "lead-research": "sdr-agent",
}
PREFIXES = {
    "support-triage": "TCK",
    "invoice-extraction": "INV",
    "code-review": "PR",
    "lead-research": "LEAD",
}
REASONS = {
    "failed": (
        "wrong category",
        "answer cited an outdated policy",
        "missed the customer's question",
    ),
    "escalated": (
        "refund above the agent's limit",
        "customer asked for a human",
        "security-sensitive change: needs a human reviewer",
    ),
    "rework": ("vendor mismatch fixed by an AP clerk", "wrong tax code corrected"),
}
ERRORS = ("RateLimitError", "ToolTimeout", "APIConnectionError")


@dataclass(frozen=True)
class Mix:
    """Outcomes in a repeating, shuffled cycle (exact shares over every whole cycle), and one
    task in ``retry_every`` whose first attempt errors and is tried again."""

    completed: int
    failed: int = 0
    escalated: int = 0
    rework: int = 0
    retry_every: int = 0

    def cycle(self, rng: random.Random) -> list[str]:
        slots = (
            ["completed"] * self.completed
            + ["failed"] * self.failed
            + ["escalated"] * self.escalated
            + ["rework"] * self.rework
        )
        rng.shuffle(slots)
        return slots


@dataclass(frozen=True)
class Phase:
    """Tasks of one workflow version, ``per_day`` of them between two ages (days before now)."""

    workflow: str
    version: str
    since: float
    until: float
    per_day: float
    mix: Mix


@dataclass(frozen=True)
class SpanPlan:
    """One span of an attempt: times are seconds after the attempt's start."""

    span: str  # "root", "agent" or the step's op
    name: str
    role: str | None
    step: Step | None
    start_s: float
    end_s: float
    error: str | None = None
    children: tuple[SpanPlan, ...] = ()


@dataclass(frozen=True)
class AttemptPlan:
    attempt_id: str
    start: datetime
    spans: SpanPlan  # the root

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.spans.end_s)


@dataclass(frozen=True)
class SignalPlan:
    signal_id: str
    outcome: str
    occurred_at: datetime
    reason: str | None = None
    rework_cost_usd: Decimal | None = None
    rework_minutes: float | None = None


@dataclass(frozen=True)
class TaskPlan:
    task_id: str
    workflow: str
    version: str
    team: str
    service: str
    attempts: tuple[AttemptPlan, ...]
    signals: tuple[SignalPlan, ...]
    outcome: str  # what the plan means it to be once decided

    @property
    def start(self) -> datetime:
        return self.attempts[0].start


@dataclass(frozen=True)
class CostPlan:
    entry_id: str
    component: str
    amount_usd: Decimal
    period_start: datetime
    period_end: datetime
    note: str
    workflow: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class Scenario:
    start: datetime
    end: datetime
    tasks: tuple[TaskPlan, ...]
    costs: tuple[CostPlan, ...]
    switch: datetime  # support triage moves from v1 to v2
    story_end: datetime  # its full traffic ends here: every ticket before is decided

    @property
    def spans(self) -> int:
        def count(node: SpanPlan) -> int:
            return 1 + sum(count(c) for c in node.children)

        return sum(count(a.spans) for t in self.tasks for a in t.attempts)


def phases(days: int) -> list[Phase]:
    """The traffic of each workflow over ``days`` (ages in days before now)."""
    quiet = DECIDED_BEFORE / timedelta(days=1)
    switch = quiet + (days - quiet) / 2
    return [
        Phase("support-triage", "v1", days, switch, 120, Mix(15, 3, 2, retry_every=25)),
        Phase("support-triage", "v2", switch, quiet, 120, Mix(23, 1, 1, retry_every=100)),
        Phase("support-triage", "v2", quiet, 0.02, 3, Mix(23, 1, 1)),
        Phase("invoice-extraction", "v3", days, 0.02, 60, Mix(22, 1, rework=2)),
        Phase("code-review", "v5", days, 0.02, 25, Mix(14, 2, 4, retry_every=10)),
        Phase("lead-research", "v2", days, 0.02, 40, Mix(13, 4, 3, retry_every=20)),
    ]


def attempt_spans(
    workflow: str, agents: Sequence[Agent], jitter: float, error: str | None
) -> SpanPlan:
    """The span tree of one attempt: the workflow root, an agent span per agent, its steps;
    with ``error``, the last step fails (and the agent and root with it)."""
    t = 0.05
    nodes = []
    last = len(agents) - 1
    for i, agent in enumerate(agents):
        a0 = t
        steps = []
        for j, step in enumerate(agent.steps):
            d = step.seconds * jitter
            failed = error if (i == last and j == len(agent.steps) - 1) else None
            steps.append(SpanPlan(step.op, step.name, agent.role, step, t, t + d, failed))
            t += d + 0.02
        nodes.append(
            SpanPlan(
                "agent",
                agent.role,
                agent.role,
                None,
                a0,
                t,
                error if i == last else None,
                tuple(steps),
            )
        )
        t += 0.03
    return SpanPlan("root", workflow, None, None, 0.0, t, error, tuple(nodes))


def jittered(agents: Sequence[Agent], factor: float) -> tuple[Agent, ...]:
    """Every token count times ``factor`` (one factor per attempt, mean 1: the averages hold)."""

    def scale(n: int) -> int:
        return round(n * factor)

    return tuple(
        Agent(
            a.role,
            tuple(
                Step(
                    s.op,
                    s.name,
                    s.provider,
                    scale(s.input_tokens),
                    scale(s.output_tokens),
                    scale(s.cache_read_tokens),
                    scale(s.reasoning_tokens),
                    s.seconds,
                )
                for s in a.steps
            ),
        )
        for a in agents
    )


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def build(
    now: datetime, *, days: int = 7, scale: float = 1.0, seed: int = 7, tag: str = "demo"
) -> Scenario:
    """The whole demo: tasks (attempts with their span trees, signals) and cost entries.
    Nothing happens after ``now``: a signal that would is not sent (the task is in progress)."""
    if days < MIN_DAYS:
        raise ValueError(f"days: at least {MIN_DAYS} (the story needs its tickets decided)")
    if not 0 < scale <= 20:
        raise ValueError("scale: more than 0, at most 20")
    rng = random.Random(seed)
    tasks: list[TaskPlan] = []
    numbers: dict[str, int] = {}
    reopen_done = False
    for phase in phases(days):
        count = max(1, round(phase.per_day * scale * (phase.since - phase.until)))
        cycle = phase.mix.cycle(rng)
        span = timedelta(days=phase.since - phase.until)
        first = now - timedelta(days=phase.since)
        for i in range(count):
            # evenly spread, each shifted by up to 40% of the gap: no two runs look alike
            start = first + span * ((i + 0.5 + rng.uniform(-0.4, 0.4)) / count)
            outcome = cycle[i % len(cycle)]
            n = numbers[phase.workflow] = numbers.get(phase.workflow, 0) + 1
            task_id = f"{PREFIXES[phase.workflow]}-{tag}-{n:05d}"
            every = phase.mix.retry_every
            retried = every and (i % every) == every - 1
            agents = VERSIONS[(phase.workflow, phase.version)]
            attempts = []
            at = start
            for k in range(2 if retried else 1):
                factor = rng.uniform(0.8, 1.2)
                error = rng.choice(ERRORS) if retried and k == 0 else None
                attempts.append(
                    AttemptPlan(
                        f"{task_id}-a{k + 1}",
                        at,
                        attempt_spans(phase.workflow, jittered(agents, factor), factor, error),
                    )
                )
                at = attempts[-1].end + timedelta(seconds=rng.uniform(20, 90))
            ended = attempts[-1].end
            signals: list[SignalPlan] = []
            reason = rng.choice(REASONS[outcome]) if outcome in REASONS else None
            if outcome == "completed":
                done = ended + _minutes(rng, 20, 110)
                if phase.workflow == "support-triage" and phase.version == "v1" and not reopen_done:
                    reopen_done = True  # the reopened ticket: reopened, tried again, completed
                    reopened = done + timedelta(hours=20)
                    again = reopened + timedelta(minutes=35)
                    attempts.append(
                        AttemptPlan(
                            f"{task_id}-a{len(attempts) + 1}",
                            again,
                            attempt_spans(phase.workflow, agents, 1.0, None),
                        )
                    )
                    signals += [
                        SignalPlan(f"{task_id}-s1", "completed", done),
                        SignalPlan(
                            f"{task_id}-s2",
                            "reopened",
                            reopened,
                            "customer replied: the refund never arrived",
                        ),
                    ]
                    done = attempts[-1].end + timedelta(minutes=30)
                signals.append(SignalPlan(f"{task_id}-s{len(signals) + 1}", "completed", done))
            elif outcome == "failed":
                signals.append(
                    SignalPlan(f"{task_id}-s1", "failed", ended + _minutes(rng, 5, 60), reason)
                )
            elif outcome == "escalated":
                signals.append(
                    SignalPlan(f"{task_id}-s1", "escalated", ended + _minutes(rng, 2, 30), reason)
                )
            elif outcome == "rework":
                minutes = round(rng.uniform(4, 15), 1)
                signals.append(
                    SignalPlan(
                        f"{task_id}-s1",
                        "rework",
                        ended + _minutes(rng, 180, 1200),
                        reason,
                        rework_cost_usd=Decimal(str(round(minutes * 0.75, 2))),
                        rework_minutes=minutes,
                    )
                )
            if any(a.end > now for a in attempts):
                continue  # still running: not part of the past
            tasks.append(
                TaskPlan(
                    task_id,
                    phase.workflow,
                    phase.version,
                    TEAMS[phase.workflow],
                    SERVICES[phase.workflow],
                    tuple(attempts),
                    tuple(s for s in signals if s.occurred_at <= now),
                    outcome,
                )
            )
    tasks.sort(key=lambda t: (t.start, t.task_id))
    start = now - timedelta(days=days)
    quiet = now - DECIDED_BEFORE
    return Scenario(
        start=start,
        end=now,
        tasks=tuple(tasks),
        costs=cost_entries(start, now, tag),
        switch=now - timedelta(days=phases(days)[1].since),
        story_end=quiet,
    )


def cost_entries(start: datetime, end: datetime, tag: str) -> tuple[CostPlan, ...]:
    """What the agents cost besides inference, over the demo's days."""

    def entry(n: int, component: str, usd: str, note: str, **scope: str) -> CostPlan:
        return CostPlan(f"demo-{tag}-cost-{n}", component, Decimal(usd), start, end, note, **scope)

    return (
        entry(
            1,
            "infrastructure",
            "35",
            "vector database for the support knowledge base",
            workflow="support-triage",
        ),
        entry(
            2,
            "labor",
            "270",
            "on-call engineers debugging the review agent (3 h)",
            workflow="code-review",
        ),
        entry(3, "licence", "140", "code-review seats", team="platform"),
        entry(4, "rework", "48", "AP clerk corrections batch", workflow="invoice-extraction"),
        entry(5, "infrastructure", "60", "shared LLM gateway"),
    )
