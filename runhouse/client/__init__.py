"""The client side of clusters: the HTTP client, the local daemon's lifecycle, call helpers."""
