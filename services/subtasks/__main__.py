"""python -m services.subtasks"""

from contracts.events import Stage
from services.runtime.stage import stage_main
from services.subtasks.app import MIGRATIONS, build

if __name__ == "__main__":
    stage_main(Stage.SUBTASKS, [MIGRATIONS], build)
