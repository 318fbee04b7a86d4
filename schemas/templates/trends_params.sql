period := 'month', start_at := NULL, end_at := NULL, workflows := NULL, teams := NULL,
    full_cost := false
