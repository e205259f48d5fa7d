"""`farmacy simulate`: realistic traffic against a running API, then its invariants checked
through the same API.

An HTTP client and nothing more: it imports no domain, application or projection code, so it
drives any deployment (the main job, N API processes behind a balancer, production) alike.
The parts: `profile` (the documented mix and the day's shape), `statuses` (the order states
it knows), `client` (httpx, timing every request), `figures` (counts, percentiles, the
progress line, the report), `world` (the cities, venues, fridges and meals it creates),
`traffic` (kitchen, fridges, customers, operators), `prices` (which prices an order may
have paid), `check` (the invariants), `run` (all of it in order).
"""
