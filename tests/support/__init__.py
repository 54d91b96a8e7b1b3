"""What the tests share, none of it a test: real servers on loopback (servers.py), the REST and GraphQL
departments they serve (rest_api.py, graphql_api.py, http_clinic.py), the demo and person federations
(demo_support.py, person_federation.py), the policy reference and property strategies
(policy_reference.py, property_strategies.py), a fake clock (fake_clock.py), an in-memory department
source for the fast unit tests (memory_source.py), compressed "bombs" (bombs.py) and a gateway in a
process of its own whose memory a test can read (memory_probe.py)."""
