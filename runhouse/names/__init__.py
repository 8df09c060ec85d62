"""Names: addresses, folders, and the stores that hold configs and their versions."""
