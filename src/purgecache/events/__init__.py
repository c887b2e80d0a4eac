"""Events about purges (`purge.created`, `purge.applied`, `purge.expired`), kept in an outbox
in the same transaction as what they describe and delivered at least once to AMQP and
webhooks by `purgecache.events.dispatcher`."""
