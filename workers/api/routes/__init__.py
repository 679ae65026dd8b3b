"""One router per resource; every object route is scoped to the calling subscriber."""
