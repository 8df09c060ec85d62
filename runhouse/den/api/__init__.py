"""Den's HTTP API: one router per noun (health, resources, grants, users, groups)."""
