"""python -m services.analysis"""

from contracts.events import Stage
from services.analysis.app import MIGRATIONS, build
from services.runtime.stage import stage_main

if __name__ == "__main__":
    stage_main(Stage.ANALYSIS, [MIGRATIONS], build)
