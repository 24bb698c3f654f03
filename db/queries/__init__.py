"""SQL per domain: websites, sessions, salts, stats, funnels, privacy."""
