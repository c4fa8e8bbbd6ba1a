import sys

from services.runtime.migrate.job import main

sys.exit(main())
