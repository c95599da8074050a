"""Rate limits of the API: token buckets shared through PostgreSQL, served from local leases."""
