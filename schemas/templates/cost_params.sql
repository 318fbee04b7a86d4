by_workflow := false, by_team := false, by_version := false, by_day := false,
    by_week := false, by_month := false, by_role := false, by_model := false,
    by_provider := false, start_at := NULL, end_at := NULL, workflows := NULL, teams := NULL,
    full_cost := false
