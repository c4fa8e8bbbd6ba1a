from services.runtime.migrate import run_env
from services.subtasks.store import metadata

run_env(metadata)
