"""The summary table of ``make bench``: ratios, the direction of "worse", the lake's size in
the label, and figures a run did not measure left out."""

from bench.summary import table


def _rows(text: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()[2:]]
    return {cells[0]: cells[1:] for cells in rows}


def test_worse_is_marked_by_direction() -> None:
    rows = _rows(
        table(
            {
                "bench.ingest_bench": {
                    "burst_acked_spans_per_s_per_core": 69_000.0,  # -10.4%: worse
                    "sustained_visible_spans_per_s_per_core": 55_000.0,  # -8.3%: within
                    "p99_ms_at_half_burst_rate": 20.0,  # lower: better
                    "commits_per_s_per_receiver": 2.0,  # no old figure
                }
            }
        )
    )
    acked = rows["durable ingest per core, spans/s acknowledged (fsynced WAL)"]
    assert acked == ["77,000", "69,000", "0.90×", "worse >10%"]
    assert rows["the same until visible (committed), per core"][-1] == ""
    assert rows["request p99 at half that load, ms"] == ["25.0", "20.0", "0.80×", ""]
    assert rows["commits per second per receiver"] == ["–", "2.00", "", ""]
    assert len(rows) == 4  # rows of benchmarks that did not run are left out


def test_same_run_ratio_and_lake_size() -> None:
    rows = _rows(
        table(
            {
                "bench.baseline": {
                    "burst_acked_spans_per_s": 33_000.0,
                    "burst_acked_spans_per_s_baseline": 40_000.0,
                },
                "bench.economics_bench": {"lake_spans": 500_000.0, "cost_per_task_s": 0.26},
            }
        )
    )
    assert rows["same run vs BENCH_BASELINE: spans/s acknowledged"][1:] == [
        "33,000",
        "0.82×",
        "worse >10%",
    ]
    assert rows["cost-per-task by workflow, team, month at 500k spans, s"] == [
        "0.13",
        "0.26",
        "2.00×",
        "worse >10%",
    ]
