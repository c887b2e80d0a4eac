"""purgecache: a Taskcluster-compatible purge-cache service, client and worker agent."""
