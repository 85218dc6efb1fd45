"""Running engines for the service: Procrastinate tasks that run each job's engine in an isolated
child, deliver webhooks and sweep expired files, jobs and rate windows."""
