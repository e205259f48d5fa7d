"""Farmacy's domain: fridges, orders, meals, venues and cities. Pure: no I/O, no clock."""
