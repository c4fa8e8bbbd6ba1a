"""The stories stage: epic → user stories (one LLM call per epic returns all its stories)."""
