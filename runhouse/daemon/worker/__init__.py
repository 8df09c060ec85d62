"""An env worker: one process per env, holding its objects and running its calls."""
