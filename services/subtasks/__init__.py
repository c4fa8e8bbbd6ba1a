"""The subtasks stage: story → subtasks (one LLM call per story returns all its subtasks)."""
