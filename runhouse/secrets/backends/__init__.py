"""Where saved secrets' values live, behind one interface (``base.py``), chosen by address."""
