"""Running engines for the service: isolation now, Procrastinate tasks to come."""
