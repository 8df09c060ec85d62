"""What crosses process boundaries: frames, serialization, remote errors. No network code."""
