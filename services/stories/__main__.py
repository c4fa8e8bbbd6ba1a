"""python -m services.stories"""

from contracts.events import Stage
from services.runtime.stage import stage_main
from services.stories.app import MIGRATIONS, build

if __name__ == "__main__":
    stage_main(Stage.STORIES, [MIGRATIONS], build)
