"""The write side: services that load one aggregate, decide, and append, retrying conflicts."""
