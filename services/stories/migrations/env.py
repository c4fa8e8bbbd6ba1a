from services.runtime.migrate import run_env
from services.stories.store import metadata

run_env(metadata)
