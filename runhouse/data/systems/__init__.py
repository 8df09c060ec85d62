"""One module per storage system; ``runhouse.data.registry`` loads them by scheme."""
