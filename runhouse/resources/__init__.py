"""Resources: the ``Resource`` base class, its registry, and every kind of resource."""
