"""python -m services.epics"""

from contracts.events import Stage
from services.epics.app import MIGRATIONS, build
from services.runtime.stage import stage_main

if __name__ == "__main__":
    stage_main(Stage.EPICS, [MIGRATIONS], build)
