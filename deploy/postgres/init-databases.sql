-- Run once by the postgres image when its data volume is new (docker-entrypoint-initdb.d).
-- Each service owns a database of its own (no service reads another's tables), and the
-- fleet's is shared by all of them: LLM ceilings, run budgets, cancellation.
CREATE DATABASE cardflow_gateway;
CREATE DATABASE cardflow_analysis;
CREATE DATABASE cardflow_epics;
CREATE DATABASE cardflow_stories;
CREATE DATABASE cardflow_subtasks;
CREATE DATABASE cardflow_fleet;
