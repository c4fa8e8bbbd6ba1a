from services.runtime.migrate import run_env
from tests.integration.apps.effect_service import metadata

run_env(metadata)
