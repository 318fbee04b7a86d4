start_at := NULL, end_at := NULL, workflows := NULL, teams := NULL
