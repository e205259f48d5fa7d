"""A simulated card processor, run as its own HTTP service (`farmacy payments simulate`): the
stand-in for an external system, so it lives beside the other operational tools, not behind
Farmacy's doors."""
