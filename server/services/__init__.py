"""One feature per module; each registers its handlers with the router."""
