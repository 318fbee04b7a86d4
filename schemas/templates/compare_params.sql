workflow_name := NULL, a_version := NULL, a_team := NULL, a_start := NULL, a_end := NULL,
    b_version := NULL, b_team := NULL, b_start := NULL, b_end := NULL, start_at := NULL,
    end_at := NULL, teams := NULL, full_cost := false
