"""The network's figures from the database: records for the pure ``reporting`` package,
indicator snapshots, and the report the CLI prints or writes."""
