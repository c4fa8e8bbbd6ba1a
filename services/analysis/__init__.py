"""The analysis stage: card → analysis (summary, kind, personas, requirements, priority)."""
